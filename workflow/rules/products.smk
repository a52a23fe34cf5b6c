# Products from the reduced spectra: flux points (from the best fit) and the cumulative
# excess/significance table.


rule flux_points:
    input:
        fit=f"{OUT}/fit/result.yaml",
        pha=spectra_pha,
        bkg=per_obs("bkg.fits"),
        arf=per_obs("arf.fits"),
        rmf=per_obs("rmf.fits"),
        external=EXTERNAL_FILES,
    output:
        ecsv=f"{OUT}/fit/flux_points.ecsv",
        png=report(
            f"{OUT}/fit/sed.png",
            caption="../report/sed.rst",
            category="Spectrum",
        ),
    params:
        provenance=PROVENANCE,
        config=settings_json(stage_config(CFG, "flux_points")),
    log:
        f"{LOGS}/flux_points.log",
    priority: 3
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "extspec flux-points {input.pha:q} --settings {params.config:q} --fit {input.fit:q}"
        " --ecsv {output.ecsv:q} --png {output.png:q} --log {log:q} --quiet"


rule cumulative:
    input:
        pha=spectra_pha,
        bkg=per_obs("bkg.fits"),
        arf=per_obs("arf.fits"),
        rmf=per_obs("rmf.fits"),
        external=EXTERNAL_FILES,
    output:
        ecsv=f"{OUT}/cumulative.ecsv",
        png=report(
            f"{OUT}/cumulative.png",
            caption="../report/cumulative.rst",
            category="Cumulative",
        ),
    params:
        provenance=PROVENANCE,
        config=settings_json(stage_config(CFG, "cumulative")),
    log:
        f"{LOGS}/cumulative.log",
    priority: 1
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "extspec cumulative {input.pha:q} --settings {params.config:q} --ecsv {output.ecsv:q}"
        " --png {output.png:q} --log {log:q} --quiet"
