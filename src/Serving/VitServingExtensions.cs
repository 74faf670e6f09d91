using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ViTGen;

/// <summary>
/// Serves a <c>[VitModel]</c> class over HTTP:
/// <code>
/// builder.Services.AddVitModel&lt;MyVit&gt;("model.safetensors", o => o.Labels = labels);
/// app.MapVitEndpoints&lt;MyVit&gt;();
/// </code>
/// gives <c>POST /v1/classify[?top=K]</c>, <c>POST /v1/embed</c>, <c>GET /healthz</c> and <c>GET /metrics</c>.
/// </summary>
public static class VitServingExtensions
{
    /// <summary>
    /// Registers <typeparamref name="TModel"/>, loaded from <paramref name="weightsPath"/> when the host starts, with a
    /// micro-batcher in front of it; sets Kestrel's <c>MaxRequestBodySize</c> to <see cref="VitServingOptions.MaxBodyBytes"/>.
    /// </summary>
    /// <typeparam name="TModel">A <c>[VitModel]</c> class declared <c>: IVitModel&lt;TModel&gt;</c>.</typeparam>
    /// <param name="services">The application's services.</param>
    /// <param name="weightsPath">The safetensors checkpoint.</param>
    /// <param name="configure">Sets batching, limits, preprocessing and labels.</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public static IServiceCollection AddVitModel<TModel>(this IServiceCollection services, string weightsPath, Action<VitServingOptions>? configure = null)
        where TModel : class, IVitModel<TModel>
    {
        ArgumentException.ThrowIfNullOrEmpty(weightsPath);
        return services.AddVitModel<TModel>(TModel.Architecture, options => TModel.Load(weightsPath, options), configure);
    }

    /// <summary>
    /// <see cref="AddVitModel{TModel}(IServiceCollection, string, Action{VitServingOptions})"/> with the loader and
    /// shapes given: for a model chosen at run time (the <c>vitgen serve</c> command) or one wrapped in an adapter.
    /// </summary>
    /// <typeparam name="TModel">The served type; it keys the registration that <see cref="MapVitEndpoints{TModel}"/> maps.</typeparam>
    /// <param name="services">The application's services.</param>
    /// <param name="architecture">The model's shapes (a generated class's <c>Architecture</c>).</param>
    /// <param name="load">Loads the model, given the threads of <see cref="VitServingOptions.Threads"/>; called once, at host start.</param>
    /// <param name="configure">Sets batching, limits, preprocessing and labels.</param>
    /// <returns><paramref name="services"/>.</returns>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public static IServiceCollection AddVitModel<TModel>(this IServiceCollection services, VitArchitecture architecture, Func<VitOptions, TModel> load, Action<VitServingOptions>? configure = null)
        where TModel : class, IVitModel
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(architecture);
        ArgumentNullException.ThrowIfNull(load);
        var options = new VitServingOptions();
        configure?.Invoke(options);
        options.Validate(architecture);

        services.AddKeyedSingleton(typeof(TModel), (_, _) => new VitModelServer(architecture, options, load));
        services.AddSingleton<IHostedService>(provider => new VitModelLoader(provider.GetRequiredKeyedService<VitModelServer>(typeof(TModel))));
        // Kestrel refuses a larger body itself (413) even before the handler runs, chunked bodies included.
        services.Configure<KestrelServerOptions>(kestrel => kestrel.Limits.MaxRequestBodySize = options.MaxBodyBytes);
        return services;
    }

    /// <summary>
    /// Maps <c>POST /v1/classify[?top=K]</c>, <c>POST /v1/embed</c>, <c>GET /healthz</c> and <c>GET /metrics</c> for the
    /// model registered by <c>AddVitModel&lt;TModel&gt;</c>.
    /// </summary>
    /// <typeparam name="TModel">The type given to <c>AddVitModel</c>.</typeparam>
    /// <param name="endpoints">The application.</param>
    /// <returns>The endpoints' group, for conventions such as authorization.</returns>
    public static IEndpointConventionBuilder MapVitEndpoints<TModel>(this IEndpointRouteBuilder endpoints) where TModel : class, IVitModel
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var server = endpoints.ServiceProvider.GetRequiredKeyedService<VitModelServer>(typeof(TModel));
        var group = endpoints.MapGroup("");
        VitEndpoints.Map(group, server);
        return group;
    }
}
