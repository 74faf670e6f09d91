// Serves the Fashion-MNIST ViT of ../fashion-mnist over HTTP:
//   dotnet run --project samples/serving -- --urls http://127.0.0.1:8080
//   curl --data-binary @samples/fashion-mnist/samples/0000-ankle-boot.png 'http://127.0.0.1:8080/v1/classify?top=3'
using ViTGen;

var builder = WebApplication.CreateSlimBuilder(args);
builder.Services.AddVitModel<FashionMnistVit>(Path.Combine(AppContext.BaseDirectory, "model.safetensors"), options =>
{
    // The eval transform and labels of ../fashion-mnist/model.json.
    options.Preprocessing = VitPreprocessing.Timm(28, 1.0, VitInterpolation.Bicubic, [0.2860406f], [0.35302424f]);
    options.Labels = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
    options.MaxBatch = 16;
});

var app = builder.Build();
app.MapVitEndpoints<FashionMnistVit>();
app.Run();

/// <summary>The architecture of ../fashion-mnist/model.json; IVitModel lets the serving layer load and run it.</summary>
[VitModel(patch: 4, dim: 64, depth: 4, heads: 4, imageSize: 28, channels: 1, classes: 10, mlpDim: 128)]
public sealed partial class FashionMnistVit : IVitModel<FashionMnistVit>;
