using LogEtl;

// 'generate <path>' rewrites the sample's access log (the checked-in data/access.jsonl came from it).
if (args is ["generate", var target])
{
    AccessLogGenerator.Write(target);
    Console.WriteLine($"wrote {AccessLogGenerator.Lines} lines to {target}, {AccessLogGenerator.MalformedLines.Count} of them malformed");
    return 0;
}

// A fresh output on every run, so the files show exactly this run.
if (Directory.Exists("out"))
{
    Directory.Delete("out", recursive: true);
}

var code = await LogPipeline.RunAsync(args);
if (code == 0 && Directory.Exists(Paths.Output))
{
    foreach (var file in Directory.GetFiles(Paths.Output).Order())
    {
        Console.Error.WriteLine($"  csv: {file}");
    }

    if (File.Exists(Paths.DeadLetters))
    {
        Console.Error.WriteLine($"  dead letters: {Paths.DeadLetters} ({File.ReadLines(Paths.DeadLetters).Count()} lines)");
    }
}

return code;
