using QuickStart;

return await PeopleEtl.RunAsync(args);
