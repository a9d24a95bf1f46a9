using System.Diagnostics.CodeAnalysis;
using Compiled.Runtime;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Compiled.Extensions.Hosting;

/// <summary>Registers compiled pipelines with a Generic Host.</summary>
public static class CompiledServiceCollectionExtensions
{
    /// <summary>
    /// Runs <typeparamref name="TPipeline"/> as a hosted service: it starts with the host and stops gracefully with it.
    /// The pipeline object comes from the container (registered here as a singleton if it is not already), so its
    /// connectors may take constructor dependencies. The service itself is registered too, to read its
    /// <see cref="CompiledPipelineService{TPipeline}.Completion"/> and <see cref="CompiledPipelineService{TPipeline}.Monitor"/>.
    /// </summary>
    public static IServiceCollection AddCompiledPipeline<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TPipeline>(
        this IServiceCollection services,
        Action<CompiledPipelineServiceOptions>? configure = null)
        where TPipeline : class, ICompiledPipeline
    {
        ArgumentNullException.ThrowIfNull(services);
        var options = new CompiledPipelineServiceOptions();
        configure?.Invoke(options);
        services.TryAddSingleton<TPipeline>();
        services.AddSingleton(provider => new CompiledPipelineService<TPipeline>(
            provider.GetRequiredService<TPipeline>(),
            options,
            provider.GetService<IConfiguration>(),
            provider.GetService<ILoggerFactory>(),
            provider.GetService<IHostApplicationLifetime>()));
        services.AddSingleton<IHostedService>(provider => provider.GetRequiredService<CompiledPipelineService<TPipeline>>());
        return services;
    }
}
