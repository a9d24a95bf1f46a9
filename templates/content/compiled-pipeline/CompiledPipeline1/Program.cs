using CompiledPipeline1;

// --help lists every option and setting; --explain prints the compiled plan.
return await OrdersPipeline.RunAsync(args);
