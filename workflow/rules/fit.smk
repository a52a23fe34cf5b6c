# Joint WStat fit of the configured model over all observations.  params hold only the
# model and fit settings: changing the model reruns this rule and the flux points only.
# Priorities: fit -> flux points is the longest chain after the reductions, so it starts
# first (then the counts image, then the cumulative table).


rule fit:
    input:
        pha=spectra_pha,
        bkg=per_obs("bkg.fits"),
        arf=per_obs("arf.fits"),
        rmf=per_obs("rmf.fits"),
        external=external_files,
        ebl=ebl_table,
    output:
        result=f"{OUT}/fit/result.yaml",
        png=report(
            f"{OUT}/fit/spectrum.png",
            caption="../report/spectrum.rst",
            category="{analysis}",
            subcategory="Spectrum",
        ),
    params:
        provenance=provenance,
        config=settings("fit"),
        model_type=lambda wildcards: ANALYSES[wildcards.analysis]["config"]["model"]["type"],  # report caption
    log:
        f"{LOGS}/fit.log",
    priority: 3
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    run:
        extspec_in_process(
            "extspec fit {input.pha:q} --settings {params.config:q} --result {output.result:q}"
            " --png {output.png:q} --log {log:q} --quiet"
        )
