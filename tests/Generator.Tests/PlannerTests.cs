using Compiled.Generator.Model;
using Compiled.Generator.Planning;

namespace Compiled.Generator.Tests;

/// <summary>The planner is pure: these tests build models by hand, with no Roslyn at all.</summary>
public sealed class PlannerTests
{
    private static readonly TypeRef Animal = Type("Animal");
    private static readonly TypeRef Dog = Type("Dog", "global::Animal");
    private static readonly TypeRef Text = Type("string");

    [Fact]
    public void A_valid_chain_fuses_into_one_segment_with_sink_slots_in_order()
    {
        var plan = PipelinePlanner.Plan(Pipeline(
            Source(Dog),
            Map("Describe", Dog, Text),
            ConnectorSink("First", Text),
            Filter("NotEmpty", Text),
            ConnectorSink("Second", Text)));

        Assert.False(plan.HasErrors);
        var segment = Assert.Single(plan.Segments);
        Assert.Equal((0, 4), (segment.FirstStage, segment.LastStage));
        Assert.Equal([-1, -1, 0, -1, 1], plan.Chain.Select(s => s.SinkSlot));
    }

    [Fact]
    public void A_stage_may_take_a_base_type_of_what_flows_and_filters_pass_the_flowing_type_on()
    {
        var plan = PipelinePlanner.Plan(Pipeline(
            Source(Dog),
            Filter("IsAnimalOk", Animal),
            Map("Bark", Dog, Text),
            ConnectorSink("Out", Text)));

        Assert.False(plan.HasErrors);
        Assert.Equal("global::Dog", plan.Chain[1].FlowType.Identity);
    }

    [Fact]
    public void A_derived_type_is_not_accepted_where_only_its_base_flows()
    {
        var plan = PipelinePlanner.Plan(Pipeline(Source(Animal), Map("Bark", Dog, Text), ConnectorSink("Out", Text)));
        var diagnostic = Assert.Single(plan.Diagnostics);
        Assert.Equal("CMPL0104", diagnostic.Id);
        Assert.Equal(["Bark", "Dog", "Input", "Animal"], diagnostic.Arguments);
    }

    [Fact]
    public void A_mismatch_does_not_cascade_to_the_stages_after_it()
    {
        var plan = PipelinePlanner.Plan(Pipeline(
            Source(Text),
            Map("Wrong", Dog, Animal),
            Filter("Fine", Animal),
            ConnectorSink("Out", Animal)));
        Assert.Equal(["CMPL0104"], plan.Diagnostics.Select(d => d.Id));
    }

    [Fact]
    public void Stages_before_the_source_and_after_the_last_sink_are_reported()
    {
        var plan = PipelinePlanner.Plan(Pipeline(
            Map("Early", Text, Text),
            Source(Text),
            ConnectorSink("Out", Text),
            Map("Late", Text, Text)));
        Assert.Equal(["CMPL0105", "CMPL0106"], plan.Diagnostics.Select(d => d.Id));
    }

    [Fact]
    public void Instance_operators_need_a_parameterless_constructor()
    {
        var model = Pipeline(Source(Text), Map("Stateful", Text, Text) with { NeedsPipelineInstance = true }, ConnectorSink("Out", Text)) with { HasParameterlessConstructor = false };
        var plan = PipelinePlanner.Plan(model);
        Assert.Equal(["CMPL0003"], plan.Diagnostics.Select(d => d.Id));
        Assert.True(plan.NeedsInstancePerPartition);
    }

    [Fact]
    public void Equal_models_give_equal_plans()
    {
        var a = PipelinePlanner.Plan(Pipeline(Source(Text), ConnectorSink("Out", Text)));
        var b = PipelinePlanner.Plan(Pipeline(Source(Text), ConnectorSink("Out", Text)));
        Assert.Equal(a, b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
    }

    [Fact]
    public void The_plan_decides_schemas_by_identity_and_which_loops_get_the_fast_path()
    {
        var annotated = Dog with { FullName = "global::Dog?" }; // a sink of Dog? records still uses Dog's schema
        var schema = new RecordSchemaModel("global::Dog", "Dog", "Dog", EquatableArray<FieldModel>.Empty) { TypeIdentity = "global::Dog" };
        var model = Pipeline(Source(Dog), Filter("Fine", Dog), ConnectorSink("Out", annotated)) with { Schemas = new[] { schema }.ToEquatableArray() };

        var plan = PipelinePlanner.Plan(model);

        Assert.Equal("Dog", plan.SourceSchema);
        Assert.Equal(["Dog", null, "Dog"], plan.Chain.Select(s => s.Schema)); // the source's records, and the sink's
        var segment = Assert.Single(plan.Segments);
        Assert.True(segment.HasFastPath); // a static filter and a connector sink can run a batch again
        Assert.Equal(SegmentInstances.Root, segment.Instances);
        Assert.True(Text.CanBeNull);
        Assert.False(new TypeRef("int", "int", "int", true, EquatableArray<string>.Empty).CanBeNull);
        Assert.True(new TypeRef("int?", "int?", "int?", true, EquatableArray<string>.Empty) { IsNullableValueType = true }.CanBeNull);
    }

    private static TypeRef Type(string name, params string[] bases)
        => new(name == "string" ? "string" : "global::" + name, name == "string" ? "string" : "global::" + name, name, false, bases.ToEquatableArray());

    private static PipelineModel Pipeline(params StageModel[] stages) => new(
        "", "P", "global::P", "P", EquatableArray<ContainingTypeModel>.Empty, true, true, true, null,
        stages.Select((s, i) => s with { Order = i }).ToEquatableArray(),
        EquatableArray<RecordSchemaModel>.Empty,
        EquatableArray<DiagnosticInfo>.Empty);

    private static StageModel Stage(string name, StageRole role, StageShape shape, TypeRef? input, TypeRef? output)
        => new(0, name, role, shape, MemberKind.Method, true, null, name, true, "", input, output, false, null);

    private static StageModel Source(TypeRef output) => Stage("Input", StageRole.Source, StageShape.Source, null, output) with { MemberKind = MemberKind.Property };

    private static StageModel Map(string name, TypeRef input, TypeRef output) => Stage(name, StageRole.Transform, StageShape.Map, input, output);

    private static StageModel Filter(string name, TypeRef input) => Stage(name, StageRole.Transform, StageShape.Filter, input, input);

    private static StageModel ConnectorSink(string name, TypeRef input) => Stage(name, StageRole.Sink, StageShape.ConnectorSink, input, input) with { MemberKind = MemberKind.Property };
}
