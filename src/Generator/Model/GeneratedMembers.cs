using System;
using System.Collections.Generic;

namespace ViTGen.Generator.Model;

/// <summary>
/// The names the emitters add to a model class. A class named like one of them would not compile (CS0542), so the
/// parser reports it instead (VITG0014). GeneratedMembersTests compiles models with every optional part and fails
/// on any member the emitters write that is missing here.
/// </summary>
internal static class GeneratedMembers
{
    public static readonly HashSet<string> Names = new(StringComparer.Ordinal)
    {
        // constants
        "ImageSize", "PatchSize", "Channels", "Dim", "Depth", "Heads", "HeadDim", "MlpDim", "NumPatches", "PrefixTokens",
        "Tokens", "NumClasses", "OutputSize", "InputSize", "PatchFeatures", "PositionRows", "NormEps",
        "AttentionSize", "FeatureSize", "PooledSize", "GroupNormGroups", "GroupNormEps", "StandardizationEps",
        // methods
        "Architecture", "Load", "LoadCuda", "Forward", "Dispose", "EmbedPatches", "RunBlock", "PoolAndClassify",
        "ForwardAttention", "ForwardFeatures", "ForwardPooled", "PoolTokens", "Classify", "WriteFeatures", "WritePooled",
        "RunImage", "FreeWeights",
        // nested types
        "Block", "Workspace", "PatchGrid", "Width", "AttentionShape", "PatchEmbeddingGemm", "QkvGemm", "ProjGemm",
        "Fc1Gemm", "Fc2Gemm", "HeadGemm", "CudaPlan", // CudaPlan is also the GPU file's hint-name suffix
    };
}
