return await Compiled.Nexmark.Runner.RunAsync(args);
