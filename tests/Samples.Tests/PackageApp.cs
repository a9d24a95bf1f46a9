namespace Compiled.Samples.Tests;

/// <summary>A user's app built from the packed packages: packs projects into a local feed and creates an app that references some of them.</summary>
internal static class PackageApp
{
    /// <summary>Packs <paramref name="projects"/> into a local feed and creates an app that references <paramref name="packages"/> from it.</summary>
    public static async Task<string> CreateAsync(string work, TimeSpan timeout, string[] projects, string[] packages, bool aot, string program)
    {
        var (feed, version) = await PackAsync(work, timeout, projects);
        var app = Path.Combine(work, "app");
        Directory.CreateDirectory(app);
        await WriteNuGetConfigAsync(app, feed);
        await File.WriteAllTextAsync(Path.Combine(app, "App.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <Nullable>enable</Nullable>
                <ImplicitUsings>enable</ImplicitUsings>
                <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                <PublishAot>{(aot ? "true" : "false")}</PublishAot>
                <RestorePackagesPath>{Path.Combine(work, "packages")}</RestorePackagesPath>
              </PropertyGroup>
              <ItemGroup>
            {string.Join("\n", packages.Select(p => $"    <PackageReference Include=\"{p}\" Version=\"{version}\" />"))}
              </ItemGroup>
            </Project>
            """);
        await File.WriteAllTextAsync(Path.Combine(app, "Program.cs"), program);
        return app;
    }

    /// <summary>Packs <paramref name="projects"/> (paths from the repository root) into <c>{work}/feed</c> under one new version.</summary>
    public static async Task<(string Feed, string Version)> PackAsync(string work, TimeSpan timeout, string[] projects)
    {
        var feed = Path.Combine(work, "feed");
        var version = "0.1.0-test" + DateTime.UtcNow.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture);
        foreach (var project in projects)
        {
            var pack = await Processes.DotnetAsync(["pack", Path.Combine(Repository.Root, project), "-c", "Release", "-o", feed, $"-p:Version={version}", "-nologo"], Repository.Root, timeout);
            Assert.True(pack.ExitCode == 0, pack.ToString());
        }

        return (feed, version);
    }

    /// <summary>A nuget.config in <paramref name="directory"/> that adds the local <paramref name="feed"/> to the machine's sources.</summary>
    public static Task WriteNuGetConfigAsync(string directory, string feed)
        => File.WriteAllTextAsync(Path.Combine(directory, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <add key="local" value="{feed}" />
              </packageSources>
            </configuration>
            """);
}
