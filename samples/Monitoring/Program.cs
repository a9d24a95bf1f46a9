using Monitoring;

// Two keyed window pipelines over the same service events: 1-minute tumbling and 5-minute sliding error counts.
// Each prints its alerts and the events that came too late for every window (the late-data side output).
//
// A watermark follows every batch a partition reads. A file is read at once, so unless told otherwise the sample
// reads one event per batch: the watermark then moves event by event, as it would on a live stream, and the late
// events in data/events.jsonl arrive after the windows they belong to have fired. It also reads with one partition:
// the file is one split, and a second partition with nothing to read would hold every watermark back until it
// reports its end — the windows would then all fire at the end of input, and whether an event counts as late would
// depend on that race. (Give --batch-size or --parallelism to override.)
string[] options = [.. args];
if (!args.Contains("--batch-size"))
{
    options = [.. options, "--batch-size", "1"];
}

if (!args.Contains("--parallelism") && !args.Contains("-p"))
{
    options = [.. options, "--parallelism", "1"];
}

Console.WriteLine("== errors per minute (tumbling 1 min, alert at >= 3) ==");
var code = await ErrorsPerMinute.RunAsync(options);
if (code != 0)
{
    return code;
}

Console.WriteLine();
Console.WriteLine("== errors per 5 minutes (sliding every minute, alert at >= 4) ==");
return await ErrorsPerFiveMinutes.RunAsync(options);
