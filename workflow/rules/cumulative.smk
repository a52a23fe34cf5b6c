# The cumulative excess/significance table (product `cumulative`, registered in
# extspec.workflow.products.cumulative; every analysis has it).


rule cumulative:
    input:
        pha=spectra_pha,
        bkg=per_obs("bkg.fits"),
        arf=per_obs("arf.fits"),
        rmf=per_obs("rmf.fits"),
        external=external_files,
    output:
        ecsv=f"{OUT}/cumulative.ecsv",
        png=report(
            f"{OUT}/cumulative.png",
            caption="../report/cumulative.rst",
            category="{analysis}",
            subcategory="Cumulative",
        ),
    params:
        provenance=provenance,
        config=settings("cumulative"),
        order=spectra_order,
    log:
        f"{LOGS}/cumulative.log",
    priority: 1
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    run:
        extspec_in_process(
            "extspec cumulative {input.pha:q} --settings {params.config:q} --ecsv {output.ecsv:q}"
            " --png {output.png:q} --log {log:q} --quiet"
        )
