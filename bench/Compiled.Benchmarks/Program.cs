using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Compiled.Benchmarks;

// '--verify [records]' runs every benchmark once on a small input and checks its answer: a quick proof that
// each implementation computes the same result before spending minutes measuring it.
if (args.Length > 0 && args[0] == "--verify")
{
    return await Verify.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 100_000);
}

// '--window-cpu [runs]' runs the keyed-window pipeline at parallelism 1 and prints wall time and the process's CPU
// time per run: the pipeline uses two workers, so events per CPU-second is the per-core figure.
if (args.Length > 0 && args[0] == "--window-cpu")
{
    return await WindowCpu.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 15);
}

// '--graph-cpu [runs]' runs the graph workloads (two keyed stages, two branches) next to hand-written loops.
if (args.Length > 0 && args[0] == "--graph-cpu")
{
    return await GraphCpu.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 9);
}

BenchmarkSwitcher.FromAssembly(typeof(PipelineBenchmarks).Assembly).Run(args);
return 0;

internal static class Verify
{
    public static async Task<int> RunAsync(int records)
    {
        var failures = 0;
        foreach (var type in typeof(PipelineBenchmarks).Assembly.GetTypes().Where(t => t.GetMethods().Any(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null)))
        {
            var instance = Activator.CreateInstance(type)!;
            type.GetProperties().FirstOrDefault(p => p.GetCustomAttribute<ParamsAttribute>() is not null)?.SetValue(instance, records);
            type.GetMethods().FirstOrDefault(m => m.GetCustomAttribute<GlobalSetupAttribute>() is not null)?.Invoke(instance, null);
            foreach (var method in type.GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null))
            {
                try
                {
                    var result = method.Invoke(instance, null);
                    if (result is Task task)
                    {
                        await task;
                    }

                    Console.WriteLine($"ok    {type.Name}.{method.Name}");
                }
                catch (Exception ex)
                {
                    failures++;
                    Console.WriteLine($"FAIL  {type.Name}.{method.Name}: {(ex is TargetInvocationException { InnerException: { } inner } ? inner.Message : ex.Message)}");
                }
            }

            type.GetMethods().FirstOrDefault(m => m.GetCustomAttribute<GlobalCleanupAttribute>() is not null)?.Invoke(instance, null);
        }

        return failures == 0 ? 0 : 1;
    }
}

internal static class WindowCpu
{
    public static async Task<int> RunAsync(int runs)
    {
        var bench = new WindowBenchmarks { Records = 10_000_000 };
        bench.Setup();
        var process = System.Diagnostics.Process.GetCurrentProcess();
        var rows = new List<(double Wall, double Cpu)>();
        for (var i = 0; i < runs + 3; i++)
        {
            process.Refresh();
            var cpu = process.TotalProcessorTime;
            var wall = System.Diagnostics.Stopwatch.StartNew();
            await bench.CompiledPipeline();
            var elapsed = wall.Elapsed.TotalSeconds;
            process.Refresh();
            var used = (process.TotalProcessorTime - cpu).TotalSeconds;
            if (i >= 3)
            {
                rows.Add((elapsed, used)); // the first three are warm-up
            }
        }

        var wallMedian = rows.Select(r => r.Wall).Order().ElementAt(rows.Count / 2);
        var cpuMedian = rows.Select(r => r.Cpu).Order().ElementAt(rows.Count / 2);
        Console.WriteLine(System.FormattableString.Invariant($"runs {rows.Count}: wall median {wallMedian * 1000:F1} ms ({bench.Records / wallMedian / 1e6:F1} M events/s), CPU median {cpuMedian * 1000:F1} ms ({bench.Records / cpuMedian / 1e6:F1} M events per CPU-second)"));
        return 0;
    }
}
