using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;

namespace Compiled.Samples.Tests;

/// <summary>Where the repository and the samples' build outputs are.</summary>
internal static class Repository
{
    public static string Root { get; } = Metadata("RepositoryRoot");

    public static string Configuration { get; } = Metadata("Configuration");

    public static string SampleDll(string sample) => Path.Combine(Root, "samples", sample, "bin", Configuration, "net10.0", sample + ".dll");

    /// <summary>
    /// Publishes sample <paramref name="sample"/> as Native AOT into <paramref name="output"/>, asserts the publish is
    /// free of warnings and produced a native executable (no managed entry assembly), and returns its path.
    /// </summary>
    public static async Task<string> PublishNativeAsync(string sample, string output, TimeSpan timeout)
    {
        var build = await Processes.DotnetAsync(
            ["publish", Path.Combine(Root, "samples", sample, sample + ".csproj"), "-c", "Release", "-o", output, "-nologo"],
            Root,
            timeout);
        Assert.True(build.ExitCode == 0, build.ToString());
        Assert.DoesNotContain("warning", build.Output, StringComparison.OrdinalIgnoreCase);
        var binary = Path.Combine(output, sample);
        Assert.True(File.Exists(binary), "the publish produced a native executable");
        Assert.False(File.Exists(Path.Combine(output, sample + ".dll")), "a native AOT publish has no managed entry assembly");
        return binary;
    }

    private static string Metadata(string key) => typeof(Repository).Assembly
        .GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == key).Value!;
}

/// <summary>The result of a child process.</summary>
internal sealed record ProcessResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}\n--- stderr\n{Error}";
}

/// <summary>Runs child processes, capturing their output.</summary>
internal static class Processes
{
    public static async Task<ProcessResult> RunAsync(string fileName, IEnumerable<string> arguments, string workingDirectory, TimeSpan timeout, IDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var output = new StringBuilder();
        var error = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (error) { error.AppendLine(e.Data); } } };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"'{fileName} {string.Join(' ', arguments)}' did not finish within {timeout}.\n{output}\n{error}");
        }

        process.WaitForExit(); // drain the output readers
        return new ProcessResult(process.ExitCode, output.ToString(), error.ToString());
    }

    public static Task<ProcessResult> DotnetAsync(IEnumerable<string> arguments, string workingDirectory, TimeSpan timeout, IDictionary<string, string>? environment = null)
        => RunAsync("dotnet", arguments, workingDirectory, timeout, environment);
}

/// <summary>Tests that build or publish with the SDK run one at a time: they share build output folders.</summary>
[CollectionDefinition(nameof(SdkBuilds), DisableParallelization = true)]
public sealed class SdkBuilds
{
}

/// <summary>POSIX signals to child processes (Process.Kill sends only SIGKILL).</summary>
internal static partial class Signals
{
    public const int Term = 15;

    /// <summary>SIGSTOP: the process is frozen (no heartbeat, no commit) until <see cref="Cont"/>.</summary>
    public const int Stop = 19;

    /// <summary>SIGCONT: a stopped process runs on.</summary>
    public const int Cont = 18;

    /// <summary>Sends <paramref name="signal"/> to process <paramref name="pid"/>; 0 on success.</summary>
    public static int Send(int pid, int signal) => Kill(pid, signal);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
