# Spatially resolved spectra (config key `spatial_bins`, extspec.resolved; the product `spatial`,
# registered in extspec.workflow.products.spatial): every sub-region an ON region of its own,
# with the analysis's background method.
#
# spatial_reduce: one job per run, reading it once and reducing every sub-region into
# obs/<obs_id>/spatial.h5 (params: the reduction's keys and `spatial_bins`, STAGE_KEYS
# 'spatial_reduce'). spatial: the fits, upper limits and the uniformity test into spatial/
# (params: model, fit, spatial_bins, spatial_fit; STAGE_KEYS 'spatial').  Adding a run adds one
# spatial_reduce job and reruns `spatial`; changing `model` or `spatial_fit` reruns only `spatial`;
# changing `spatial_bins` reruns the spatial_reduce jobs and `spatial`, never the analysis's own
# reductions or fit.


SPATIAL_ANALYSES = PRODUCT_ANALYSES["spatial"]
"""Analyses with `spatial_bins` (and DL3 runs)."""


rule spatial_reduce:
    input:
        obs_files,
    output:
        f"{OUT}/obs/{{obs_id}}/spatial.h5",
    params:
        provenance=provenance,
        settings=settings("spatial_reduce"),
        datastore=lambda wildcards: datastore(wildcards.analysis),
    wildcard_constraints:
        analysis=analyses_regex(SPATIAL_ANALYSES),
    log:
        f"{LOGS}/spatial_reduce/{{obs_id}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    run:
        extspec_in_process(
            "extspec spatial-reduce {wildcards.obs_id} --datastore {params.datastore:q} --out {output:q}"
            " --settings {params.settings:q} --log {log:q} --quiet"
        )


for _name in SPATIAL_ANALYSES:
    _safe = re.sub(r"\W", "_", _name)

    rule:
        name:
            f"spatial_{_safe}"
        input:
            run_files(_name, "spatial.h5"),
        output:
            product_outputs("spatial", _name),
        params:
            provenance=ANALYSES[_name]["provenance"],
            settings=settings_json(stage_config(ANALYSES[_name]["config"], "spatial")),
            outdir=f"{RESULTS}/{_name}/spatial",
        log:
            f"{RESULTS}/{_name}/logs/spatial.log",
        threads: 1
        resources:
            mem_mb=2000,
            runtime=30,
        run:
            extspec_in_process(
                "extspec spatial {input:q} --outdir {params.outdir:q} --settings {params.settings:q}"
                " --log {log:q} --quiet"
            )
