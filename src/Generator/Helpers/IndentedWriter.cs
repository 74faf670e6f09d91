using System;
using System.Text;

namespace ViTGen.Generator.Helpers;

/// <summary>
/// Writes C# with four-space indentation and <c>\n</c> line ends on every platform, so output is identical
/// wherever the generator runs.
/// </summary>
internal sealed class IndentedWriter
{
    private readonly StringBuilder _text = new();
    private int _depth;

    public IndentedWriter Line(string line = "")
    {
        if (line.Length > 0) _text.Append(' ', _depth * 4).Append(line);
        _text.Append('\n');
        return this;
    }

    /// <summary>Writes <paramref name="header"/>, an opening brace, and indents until the returned scope is disposed.</summary>
    public Scope Block(string header)
    {
        Line(header);
        Line("{");
        _depth++;
        return new Scope(this);
    }

    public override string ToString() => _text.ToString();

    internal readonly struct Scope : IDisposable
    {
        private readonly IndentedWriter _writer;

        public Scope(IndentedWriter writer) => _writer = writer;

        public void Dispose()
        {
            _writer._depth--;
            _writer.Line("}");
        }
    }
}
