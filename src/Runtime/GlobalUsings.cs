global using System.ComponentModel;
global using System.Runtime.CompilerServices;
global using System.Runtime.InteropServices;
global using System.Runtime.Intrinsics;

// Kernels stackalloc small tiles on every call; zeroing them is wasted work (they are always written first).
[module: System.Runtime.CompilerServices.SkipLocalsInit]
