using Compiled.Connectors;
using Compiled.Extensions.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Compiled.Runtime.Tests.Hosting;

/// <summary>Pipelines run as hosted services inside a Generic Host.</summary>
public sealed class HostedServiceTests
{
    private static HostApplicationBuilder Builder(Dictionary<string, string?>? configuration = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(configuration ?? []);
        return builder;
    }

    [Fact]
    public async Task The_pipeline_starts_with_the_host_and_stops_with_it_without_losing_a_record()
    {
        var source = new EndlessSource(signalAfter: 20_000);
        var pipeline = new EndlessPipeline { Numbers = source };
        var builder = Builder(new() { ["Compiled:endless:Parallelism"] = "2", ["Compiled:endless:BatchSize"] = "128" });
        builder.Services.AddSingleton(pipeline);
        builder.Services.AddCompiledPipeline<EndlessPipeline>();
        using var host = builder.Build();
        var service = host.Services.GetRequiredService<CompiledPipelineService<EndlessPipeline>>();

        await host.StartAsync();
        await source.Reached;
        Assert.NotNull(service.Monitor.Snapshot());
        await host.StopAsync();

        var result = await service.Completion;
        Assert.Equal(PipelineOutcome.Stopped, result.Outcome);
        Assert.Equal(2, result.Parallelism);
        Assert.Equal(result.RecordsRead, pipeline.Output.Written);
        Assert.Equal(1, pipeline.Output.Closed);
        Assert.True(source.Closed);
    }

    [Fact]
    public async Task A_bounded_pipeline_can_stop_the_host_when_it_completes()
    {
        var pipeline = new SquarePipeline { Numbers = new CollectionSource<long>(1, 2, 3) };
        var builder = Builder();
        builder.Services.AddSingleton(pipeline);
        builder.Services.AddCompiledPipeline<SquarePipeline>(o =>
        {
            o.StopHostOnCompletion = true;
            o.Configure = options => options.Parallelism = 1;
        });
        using var host = builder.Build();
        var service = host.Services.GetRequiredService<CompiledPipelineService<SquarePipeline>>();

        await host.RunAsync(); // returns only because the pipeline stopped the host
        var result = await service.Completion;
        Assert.Equal(PipelineOutcome.Completed, result.Outcome);
        Assert.Equal([1L, 4, 9], pipeline.Output.Items.Order());
    }

    [Fact]
    public async Task A_failing_pipeline_stops_the_host_and_reports_the_failure()
    {
        var pipeline = new FragilePipeline { Numbers = new CollectionSource<long>(4241, 4242) };
        var builder = Builder();
        builder.Services.AddSingleton(pipeline);
        builder.Services.AddCompiledPipeline<FragilePipeline>();
        using var host = builder.Build();
        var service = host.Services.GetRequiredService<CompiledPipelineService<FragilePipeline>>();

        await host.RunAsync(); // returns only because the failing pipeline stopped the host
        var failure = await Assert.ThrowsAsync<OperatorException>(() => service.Completion);
        Assert.Equal("Explode", failure.StageName);
    }

    [Fact]
    public async Task Invalid_configuration_fails_the_hosts_start_naming_the_setting()
    {
        var builder = Builder(new() { ["Compiled:endless:Parallelism"] = "zero" });
        builder.Services.AddSingleton(new EndlessPipeline());
        builder.Services.AddCompiledPipeline<EndlessPipeline>();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<PipelineConfigurationException>(() => host.StartAsync());
        Assert.Contains("invalid value 'zero' for setting 'Parallelism' (from configuration section 'Compiled:endless')", error.Message, StringComparison.Ordinal);
    }
}
