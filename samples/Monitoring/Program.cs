using Monitoring;

// One pipeline over the service events, read once: the errors feed two branches, 1-minute tumbling and 5-minute
// sliding error counts per service, each printing its alerts; events too late for every 1-minute window go to the
// late-data side output.
//
// A watermark follows every batch a partition reads. A file is read at once, so unless told otherwise the sample
// reads one event per batch: the watermark then moves event by event, as it would on a live stream, and the late
// events in data/events.jsonl arrive after the windows they belong to have fired. It also reads with one partition:
// the file is one split, and whether an event counts as late would otherwise depend on when the second partition
// (which has nothing to read) reports its end. (Give --batch-size or --parallelism to override.)
string[] options = [.. args];
if (!args.Contains("--batch-size"))
{
    options = [.. options, "--batch-size", "1"];
}

if (!args.Contains("--parallelism") && !args.Contains("-p"))
{
    options = [.. options, "--parallelism", "1"];
}

return await ServiceAlerts.RunAsync(options);
