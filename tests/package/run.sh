#!/usr/bin/env bash
# Package test: packs the ViTGen NuGet package (runtime + source generator) into a temporary folder feed,
# then builds and runs a fresh console app OUTSIDE the repository that references only `ViTGen` 0.1.0 from
# that feed, declares the `basic` parity model with [VitModel] and checks its output against the PyTorch
# fixture (tests/fixtures/parity/basic*.safetensors, relative L2 <= 5e-6, the parity suite's bound).
#
#   bash tests/package/run.sh          (from the repository root; .ci/run calls it this way)
#
# Prints one final line, "package: passed" or "package: failed", and exits non-zero on failure.
# VITGEN_PACKAGE_KEEP=1 keeps the temporary folder (printed) for inspection.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# No MSBuild nodes or build server left running after the script: CI runs it once, in a fresh process.
export MSBUILDDISABLENODEREUSE=1 DOTNET_CLI_USE_MSBUILD_SERVER=0

package_id=ViTGen
package_version=0.1.0
fixtures="$repo/tests/fixtures/parity"

tmp=""
finish() {
  local status=$?
  if [ -n "$tmp" ] && [ -d "$tmp" ]; then
    if [ "${VITGEN_PACKAGE_KEEP:-0}" = 1 ] || [ "$status" -ne 0 ]; then
      echo "temporary folder kept: $tmp"
    else
      rm -rf "$tmp"
    fi
  fi
  if [ "$status" -eq 0 ]; then echo "package: passed"; else echo "package: failed"; fi
  exit "$status"
}
trap finish EXIT

fail() { echo "error: $*" >&2; exit 1; }
step() { echo "== $*"; }

command -v dotnet >/dev/null || fail "dotnet is not on PATH"
for f in basic.safetensors basic.io.safetensors; do
  [ -f "$fixtures/$f" ] || fail "missing fixture $fixtures/$f"
done

# The consumer must live outside the repository: MSBuild walks up from the project folder to find
# Directory.Build.props / Directory.Packages.props, and the repository's must not apply to it.
tmp="$(mktemp -d "${TMPDIR:-/tmp}/vitgen-package.XXXXXX")"
tmp="$(cd "$tmp" && pwd -P)"
case "$tmp/" in
  "$(cd "$repo" && pwd -P)/"*)   # TMPDIR points into the repository: use /tmp instead
    rmdir "$tmp"; tmp="$(mktemp -d /tmp/vitgen-package.XXXXXX)"; tmp="$(cd "$tmp" && pwd -P)"
    case "$tmp/" in "$(cd "$repo" && pwd -P)/"*) tmp=""; fail "no temporary folder outside the repository" ;; esac ;;
esac
feed="$tmp/feed"; packages="$tmp/packages"; app="$tmp/consumer"
mkdir -p "$feed" "$packages" "$app"

# ---------------------------------------------------------------------------------------------- pack
step "dotnet pack src/Runtime -c Release -o $feed"
dotnet pack src/Runtime -c Release -o "$feed" -nologo -v minimal
nupkg="$feed/$package_id.$package_version.nupkg"
[ -f "$nupkg" ] || fail "pack did not produce $nupkg (got: $(ls "$feed"))"
if command -v unzip >/dev/null; then unzip -l "$nupkg"; fi

# ---------------------------------------------------------------------------------- consumer project
step "consumer project in $app"
# Stop MSBuild's upward search here, whatever lies above the temporary folder.
echo '<Project />' > "$app/Directory.Build.props"
echo '<Project />' > "$app/Directory.Build.targets"
echo '<Project />' > "$app/Directory.Packages.props"

# The local feed in addition to the default sources; a packages folder of its own, so neither a stale
# ViTGen 0.1.0 in the user's cache nor one from an earlier run can be picked up.
cat > "$app/NuGet.config" <<EOF
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <config>
    <add key="globalPackagesFolder" value="$packages" />
  </config>
  <packageSources>
    <add key="vitgen-local" value="$feed" />
  </packageSources>
</configuration>
EOF

cat > "$app/Consumer.csproj" <<EOF
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <OutputType>Exe</OutputType>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
    <UseAppHost>false</UseAppHost>
    <!-- CI may have no route to the vulnerability database; the audit is not what this test checks. -->
    <NuGetAudit>false</NuGetAudit>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="$package_id" Version="$package_version" />
  </ItemGroup>
</Project>
EOF

cat > "$app/Program.cs" <<'EOF'
using System.Globalization;
using ViTGen;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: Consumer <weights.safetensors> <io.safetensors>");
    return 2;
}

float[] input;
double[] expected;
int batch;
using (SafeTensorsFile io = SafeTensorsFile.Open(args[1]))
{
    if (!io.TryGetTensor("input", out SafeTensorInfo? inputInfo) || !io.TryGetTensor("expected", out SafeTensorInfo? expectedInfo))
    {
        Console.Error.WriteLine($"{args[1]}: tensors 'input' and 'expected' are required");
        return 1;
    }
    input = new float[inputInfo.ElementCount];
    expected = new double[expectedInfo.ElementCount];
    io.ReadFloat32("input", input);
    io.ReadFloat64("expected", expected);
    batch = (int)inputInfo.Shape[0];
}

Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"model: Basic (image {Basic.ImageSize}, patch {Basic.PatchSize}, dim {Basic.Dim}, depth {Basic.Depth}, heads {Basic.Heads}, classes {Basic.NumClasses}), batch {batch}"));
if (batch != 2 || input.Length != batch * Basic.InputSize || expected.Length != batch * Basic.OutputSize)
{
    Console.Error.WriteLine($"fixture shapes do not match the compiled model: batch {batch}, input {input.Length}, expected {expected.Length}");
    return 1;
}

using Basic model = Basic.Load(args[0]);
float[] output = new float[batch * Basic.OutputSize];
Array.Fill(output, float.NaN);                    // an element Forward does not write fails the check
model.Forward(input, output, batch);

double error = 0, norm = 0;
for (int i = 0; i < output.Length; i++)
{
    double d = output[i] - expected[i];
    error += d * d;
    norm += expected[i] * expected[i];
}
double relativeL2 = Math.Sqrt(error / norm);       // NaN anywhere makes this NaN, which fails the bound
const double Bound = 5e-6; // ParityTests.Bound
bool ok = relativeL2 <= Bound;
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"relative L2 error vs PyTorch: {relativeL2:E3} (bound {Bound:E0}): {(ok ? "ok" : "FAILED")}"));
return ok ? 0 : 1;

[VitModel(patch: 4, dim: 64, depth: 2, heads: 4, imageSize: 32, classes: 10)]
public partial class Basic;
EOF

step "dotnet restore (local feed + default sources, packages in $packages)"
dotnet restore "$app/Consumer.csproj" -nologo -v minimal

# The restored package: runtime for both frameworks, generator as an analyzer, and no dependency on it.
extracted="$packages/$(echo "$package_id" | tr '[:upper:]' '[:lower:]')/$package_version"
for f in lib/net9.0/ViTGen.Runtime.dll lib/net9.0/ViTGen.Runtime.xml \
         lib/net10.0/ViTGen.Runtime.dll lib/net10.0/ViTGen.Runtime.xml \
         analyzers/dotnet/cs/ViTGen.Generator.dll; do
  [ -f "$extracted/$f" ] || fail "package lacks $f (restored into $extracted)"
done
nuspec="$extracted/$(echo "$package_id" | tr '[:upper:]' '[:lower:]').nuspec"
[ -f "$nuspec" ] || fail "no nuspec in $extracted"
if grep -qi 'ViTGen\.Generator' "$nuspec"; then fail "the nuspec names ViTGen.Generator (a dependency on the generator)"; fi
if find "$extracted/lib" -name 'ViTGen.Generator*' | grep -q .; then fail "the generator is packed under lib/"; fi
echo "package layout ok: lib/net9.0, lib/net10.0 (dll + xml), analyzers/dotnet/cs/ViTGen.Generator.dll; no generator dependency"

step "dotnet build (warnings as errors)"
dotnet build "$app/Consumer.csproj" -c Release --no-restore -nologo -v minimal -warnaserror
# Generated by the packaged generator, not written by hand: Basic only exists if the analyzer ran.
out="$app/bin/Release/net10.0"
[ -f "$out/Consumer.dll" ] || fail "no $out/Consumer.dll"
[ -f "$out/ViTGen.Runtime.dll" ] || fail "ViTGen.Runtime.dll was not copied to the output"
if [ -e "$out/ViTGen.Generator.dll" ]; then fail "ViTGen.Generator.dll was copied to the output (a runtime dependency)"; fi

step "run: basic fixture"
dotnet "$out/Consumer.dll" "$fixtures/basic.safetensors" "$fixtures/basic.io.safetensors"
