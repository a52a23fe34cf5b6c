# One job per observation: cube.h5 and the OGIP set pha/bkg/arf/rmf.fits, by `extspec reduce`
# (the command line, extspec.cli; every rule runs it with its settings as JSON params).
#
# params hold only the analysis's reduction settings (STAGE_KEYS['reduce'] in
# extspec.workflow.settings), the data store and the obs id: adding an observation to an analysis
# adds one such job and leaves the others untouched; changing a reduction setting reruns them all.


rule reduce:
    input:
        obs_files,
    output:
        cube=f"{OUT}/obs/{{obs_id}}/cube.h5",
        pha=f"{OUT}/obs/{{obs_id}}/pha.fits",
        bkg=f"{OUT}/obs/{{obs_id}}/bkg.fits",
        arf=f"{OUT}/obs/{{obs_id}}/arf.fits",
        rmf=f"{OUT}/obs/{{obs_id}}/rmf.fits",
    params:
        provenance=provenance,
        reduction=settings("reduce"),
        datastore=lambda wildcards: datastore(),
        obs_id=lambda wildcards: int(wildcards.obs_id),
        outdir=lambda wildcards, output: os.path.dirname(output.cube),
        events=lambda wildcards: " --onoff-events" if wildcards.analysis in LIGHT_CURVE_ANALYSES else "",
    wildcard_constraints:
        analysis=analyses_pattern([a for a in ANALYSES if a not in LIGHT_CURVE_ANALYSES]),
    log:
        f"{LOGS}/reduce/{{obs_id}}.log",
    benchmark:
        f"{OUT}/benchmarks/reduce/{{obs_id}}.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "extspec reduce {params.obs_id} --datastore {params.datastore:q} --outdir {params.outdir:q}"
        " --settings {params.reduction:q} --log {log:q} --quiet{params.events}"
