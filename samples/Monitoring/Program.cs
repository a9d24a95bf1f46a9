using Monitoring;

// Two keyed window pipelines over the same service events: 1-minute tumbling and 5-minute sliding error counts.
// Each prints its alerts and the events that came too late for every window (the late-data side output).
//
// A watermark follows every batch a partition reads. A file is read at once, so unless told otherwise the sample
// reads one event per batch: the watermark then moves event by event, as it would on a live stream, and the late
// events in data/events.jsonl arrive after the windows they belong to have fired.
string[] options = args.Contains("--batch-size") ? args : [.. args, "--batch-size", "1"];
Console.WriteLine("== errors per minute (tumbling 1 min, alert at >= 3) ==");
var code = await ErrorsPerMinute.RunAsync(options);
if (code != 0)
{
    return code;
}

Console.WriteLine();
Console.WriteLine("== errors per 5 minutes (sliding every minute, alert at >= 4) ==");
return await ErrorsPerFiveMinutes.RunAsync(options);
