using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Compiled.Benchmarks.PipelineBenchmarks).Assembly).Run(args);
