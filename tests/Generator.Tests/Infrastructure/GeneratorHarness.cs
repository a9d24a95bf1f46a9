using System.Collections.Immutable;
using System.Reflection;
using System.Runtime.Loader;
using Compiled.Connectors;
using Compiled.Runtime;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;

namespace Compiled.Generator.Tests.Infrastructure;

/// <summary>Runs the generator and the analyzer over source strings, the way the compiler does in a build.</summary>
internal static class GeneratorHarness
{
    public static readonly CSharpParseOptions ParseOptions = new(LanguageVersion.Preview);

    public static readonly ImmutableArray<MetadataReference> BclReferences = [.. Basic.Reference.Assemblies.Net100.References.All];

    public static readonly ImmutableArray<MetadataReference> References =
    [
        .. BclReferences,
        MetadataReference.CreateFromFile(typeof(PipelineAttribute).Assembly.Location),
        MetadataReference.CreateFromFile(typeof(PipelineRunner).Assembly.Location),
        MetadataReference.CreateFromFile(typeof(Compiled.Sqlite.SqliteSink<>).Assembly.Location),
        MetadataReference.CreateFromFile(typeof(Compiled.Testing.ConnectorContract).Assembly.Location),
    ];

    public static CSharpCompilation Compile(IEnumerable<MetadataReference> references, params string[] sources)
        => Compile(ParseOptions, references, sources);

    public static CSharpCompilation Compile(CSharpParseOptions options, IEnumerable<MetadataReference> references, params string[] sources)
        => CSharpCompilation.Create(
            "Generated" + Guid.NewGuid().ToString("N"),
            sources.Select((text, i) => CSharpSyntaxTree.ParseText(text, options, path: $"Source{i}.cs")),
            references,
            new CSharpCompilationOptions(OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, concurrentBuild: false));

    public static CSharpCompilation Compile(params string[] sources) => Compile(References, sources);

    public static GeneratorDriver CreateDriver() => CreateDriver(ParseOptions);

    public static GeneratorDriver CreateDriver(CSharpParseOptions options) => CSharpGeneratorDriver.Create(
        [new PipelineGenerator().AsSourceGenerator()],
        parseOptions: options,
        driverOptions: new GeneratorDriverOptions(IncrementalGeneratorOutputKind.None, trackIncrementalGeneratorSteps: true));

    public static GeneratorRun Run(params string[] sources) => Run(Compile(sources));

    /// <summary>Runs over <paramref name="sources"/> written in language version <paramref name="version"/>.</summary>
    public static GeneratorRun RunAt(LanguageVersion version, params string[] sources)
    {
        var options = new CSharpParseOptions(version);
        return Run(Compile(options, References, sources), CreateDriver(options));
    }

    public static GeneratorRun Run(CSharpCompilation compilation) => Run(compilation, CreateDriver());

    private static GeneratorRun Run(CSharpCompilation compilation, GeneratorDriver created)
    {
        var driver = created.RunGeneratorsAndUpdateCompilation(compilation, out var output, out var generatorDiagnostics);
        var analyzerDiagnostics = output
            .WithAnalyzers([new PipelineAnalyzer()])
            .GetAnalyzerDiagnosticsAsync()
            .GetAwaiter()
            .GetResult();
        return new GeneratorRun(driver, (CSharpCompilation)output, generatorDiagnostics, analyzerDiagnostics);
    }
}

/// <summary>The outcome of one generator run.</summary>
internal sealed record GeneratorRun(GeneratorDriver Driver, CSharpCompilation Output, ImmutableArray<Diagnostic> GeneratorDiagnostics, ImmutableArray<Diagnostic> AnalyzerDiagnostics)
{
    public GeneratorDriverRunResult Result => Driver.GetRunResult();

    /// <summary>Generated files by hint name.</summary>
    public IReadOnlyDictionary<string, string> Sources => Result.Results
        .SelectMany(r => r.GeneratedSources)
        .ToDictionary(s => s.HintName, s => s.SourceText.ToString());

    /// <summary>Compiler errors and warnings of the compilation including the generated code.</summary>
    public ImmutableArray<Diagnostic> CompilerDiagnostics => Output.GetDiagnostics()
        .Where(d => d.Severity >= DiagnosticSeverity.Warning)
        .ToImmutableArray();

    /// <summary>Every diagnostic, compiler and analyzer, at warning or above.</summary>
    public IReadOnlyList<Diagnostic> AllDiagnostics => [.. GeneratorDiagnostics, .. CompilerDiagnostics, .. AnalyzerDiagnostics];

    /// <summary>Compiler diagnostics located in generated files — there must never be any.</summary>
    public IReadOnlyList<Diagnostic> DiagnosticsInGeneratedCode => CompilerDiagnostics
        .Where(d => d.Location.SourceTree is { } tree && tree.FilePath.EndsWith(".g.cs", StringComparison.Ordinal))
        .ToList();

    public void AssertClean()
    {
        var problems = AllDiagnostics.Select(d => d.ToString()).Concat(Result.Results.Where(r => r.Exception is not null).Select(r => r.Exception!.ToString())).ToList();
        Assert.True(problems.Count == 0, "Expected no diagnostics, got:\n" + string.Join("\n", problems));
    }

    /// <summary>Emits the compilation and loads it into a collectible context that shares Compiled's assemblies with the tests.</summary>
    public Assembly Load()
    {
        AssertClean();
        using var stream = new MemoryStream();
        var emitted = Output.Emit(stream);
        Assert.True(emitted.Success, string.Join("\n", emitted.Diagnostics));
        stream.Position = 0;
        var context = new AssemblyLoadContext("generated", isCollectible: true);
        return context.LoadFromStream(stream);
    }
}

/// <summary>Runs compiled pipelines loaded from a generated assembly.</summary>
internal static class LoadedPipelines
{
    public static object Create(Assembly assembly, string typeName)
        => Activator.CreateInstance(assembly.GetType(typeName, throwOnError: true)!)!;

    public static T Get<T>(object pipeline, string property)
        => (T)pipeline.GetType().GetProperty(property, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)!.GetValue(pipeline)!;

    public static void Set(object pipeline, string property, object value)
        => pipeline.GetType().GetProperty(property, BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance)!.SetValue(pipeline, value);

    public static Task<PipelineResult> RunAsync(object pipeline, int parallelism, int batchSize = PipelineOptions.DefaultBatchSize)
        => ((ICompiledPipeline)pipeline).CreateJob().RunAsync(new PipelineOptions { Parallelism = parallelism, BatchSize = batchSize }, default, default);

    public static IReadOnlyList<IReadOnlyList<T>> Partitions<T>(object pipeline, string sink)
        => Get<CollectionSink<T>>(pipeline, sink).Partitions;

    /// <summary>The items of a collection sink of a type the test cannot name, as text.</summary>
    public static IReadOnlyList<string?> ItemsAsText(object pipeline, string sink)
    {
        var collection = Get<object>(pipeline, sink);
        var items = (System.Collections.IEnumerable)collection.GetType().GetProperty("Items")!.GetValue(collection)!;
        return items.Cast<object?>().Select(i => i?.ToString()).ToList();
    }
}
