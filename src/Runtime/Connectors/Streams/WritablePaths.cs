namespace Compiled.Runtime;

/// <summary>Start-up checks that output can be written where it is asked to go, with messages that say why not.</summary>
internal static class WritablePaths
{
    /// <summary>
    /// The nearest existing directory at or above <paramref name="path"/> (null: none). Throws <see cref="IOException"/>
    /// naming a file found on the way — where .NET's own message would be "Could not find a part of the path".
    /// </summary>
    public static string? NearestDirectory(string? path)
    {
        for (var at = path is null ? null : Path.GetFullPath(path); at is not null; at = Path.GetDirectoryName(at))
        {
            if (Directory.Exists(at))
            {
                return at;
            }

            if (File.Exists(at))
            {
                throw new IOException($"'{at}' is a file, not a directory");
            }
        }

        return null;
    }

    /// <summary>Creates a file in <paramref name="directory"/> and deletes it at once: throws if the process cannot write there.</summary>
    public static void ProbeWrite(string directory)
    {
        using var probe = new FileStream(Path.Combine(directory, $".compiled-probe-{Guid.NewGuid():N}"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
    }
}
