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
