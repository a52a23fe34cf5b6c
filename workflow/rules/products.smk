# Products from the reduced spectra: flux points (from the best fit), and the summary.  (The
# cumulative excess/significance table is a registered product: cumulative.smk.)


rule flux_points:
    input:
        fit=f"{OUT}/fit/result.yaml",
        pha=spectra_pha,
        bkg=per_obs("bkg.fits"),
        arf=per_obs("arf.fits"),
        rmf=per_obs("rmf.fits"),
        external=external_files,
        ebl=ebl_table,
    output:
        ecsv=f"{OUT}/fit/flux_points.ecsv",
        png=report(
            f"{OUT}/fit/sed.png",
            caption="../report/sed.rst",
            category="{analysis}",
            subcategory="Spectrum",
        ),
    params:
        provenance=provenance,
        config=settings("flux_points"),
    log:
        f"{LOGS}/flux_points.log",
    priority: 3
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    run:
        extspec_in_process(
            "extspec flux-points {input.pha:q} --settings {params.config:q} --fit {input.fit:q}"
            " --ecsv {output.ecsv:q} --png {output.png:q} --log {log:q} --quiet"
        )


# One row per analysis and per joint fit (results/summary.ecsv + .html).  After a failed run (--keep-going)
# the onerror hook in the Snakefile writes it too, naming the analyses that did not finish.


rule summary:
    input:
        results=per_analysis("fit/result.yaml") + [f"{RESULTS}/{j}/fit/result.yaml" for j in PREPARED["joint"]],
        cumulative=per_analysis("cumulative.ecsv"),
        light_curves=[f"{RESULTS}/{a}/lightcurve/lightcurve.ecsv" for a in LIGHT_CURVE_ANALYSES],
        product_columns=[f"{RESULTS}/{a}/{c.file}" for p, a in SUMMARY_PRODUCTS for c in PRODUCTS[p].summary],
    output:
        ecsv=f"{RESULTS}/summary.ecsv",
        html=report(f"{RESULTS}/summary.html", caption="../report/summary.rst", category="Summary"),
    params:
        code=CODE,
        results=lambda wildcards, output: os.path.dirname(output.ecsv),  # <results_dir>/summary.ecsv
        analyses=SUMMARY_ROWS,
        light_curves="".join(f" --light-curve {shlex.quote(a)}" for a in LIGHT_CURVE_ANALYSES),
        products="".join(f" --product {shlex.quote(f'{p}:{a}')}" for p, a in SUMMARY_PRODUCTS),
    log:
        f"{RESULTS}/logs/summary.log",
    priority: 1
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    run:
        extspec_in_process(
            "extspec summary {params.results:q} {params.analyses:q} --ecsv {output.ecsv:q} --html {output.html:q}"
            "{params.light_curves}{params.products} --log {log:q} --quiet"
        )
