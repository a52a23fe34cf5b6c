# Stack the per-observation cubes into a counts image (FITS with WCS) and draw it with the
# ON region, every run's OFF regions and the exclusion regions; from the same cubes the
# excess and significance maps (background from each run's background IRF, normalised
# outside the ON and exclusion regions; extspec.maps).


rule stack:
    input:
        cubes=per_obs("cube.h5"),
        spectra=per_obs("pha.fits"),
    output:
        fits=f"{OUT}/stacked/counts.fits",
        png=report(
            f"{OUT}/stacked/counts.png",
            caption="../report/counts.rst",
            category="{analysis}",
            subcategory="Sky maps",
        ),
        excess=f"{OUT}/stacked/excess.fits",
        significance=f"{OUT}/stacked/significance.fits",
        maps_png=report(
            f"{OUT}/stacked/maps.png",
            caption="../report/maps.rst",
            category="{analysis}",
            subcategory="Sky maps",
        ),
    params:
        provenance=provenance,
        config=settings("stack"),
    log:
        f"{LOGS}/stack.log",
    priority: 2
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    run:
        extspec_in_process(
            "extspec stack {input.spectra:q} --settings {params.config:q} --fits {output.fits:q}"
            " --png {output.png:q} --excess {output.excess:q} --significance {output.significance:q}"
            " --maps-png {output.maps_png:q} --log {log:q} --quiet"
        )
