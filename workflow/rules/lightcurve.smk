# Light curves (config block `light_curve`): per time bin and energy bin the joint fit's shape
# with its norm fitted, from the cached reductions (extspec.lightcurve).
#
# The reductions of an analysis with a light curve also write onoff_events.h5 (the ON and OFF
# events with their times; rule reduce_lc, the rule reduce with that extra output), so that
# time bins cutting runs need no second pass over the DL3 data.  The bins themselves are not
# in the reductions' params: changing them reruns only the light curve; adding a run reruns its
# reduction, the aggregates and the light curve.  With reduce.batch_size > 1 the batch jobs
# write onoff_events.h5 (reduce.smk) and the light curve takes the batches' manifests
# (per_obs), read as their runs' folders.


use rule reduce as reduce_lc with:
    output:
        cube=f"{OUT}/obs/{{obs_id}}/cube.h5",
        pha=f"{OUT}/obs/{{obs_id}}/pha.fits",
        bkg=f"{OUT}/obs/{{obs_id}}/bkg.fits",
        arf=f"{OUT}/obs/{{obs_id}}/arf.fits",
        rmf=f"{OUT}/obs/{{obs_id}}/rmf.fits",
        events=f"{OUT}/obs/{{obs_id}}/onoff_events.h5",
    wildcard_constraints:
        analysis=analyses_regex([a for a in LIGHT_CURVE_ANALYSES if a not in BATCHES]),


rule light_curve:
    input:
        fit=f"{OUT}/fit/result.yaml",
        pha=per_obs("pha.fits"),
        bkg=per_obs("bkg.fits"),
        arf=per_obs("arf.fits"),
        rmf=per_obs("rmf.fits"),
        events=per_obs("onoff_events.h5"),
    output:
        ecsv=f"{OUT}/lightcurve/lightcurve.ecsv",
        gadf=f"{OUT}/lightcurve/lightcurve_gadf.ecsv",
        png=report(
            f"{OUT}/lightcurve/lightcurve.png",
            caption="../report/lightcurve.rst",
            category="{analysis}",
            subcategory="Light curve",
        ),
    params:
        provenance=provenance,
        config=settings("light_curve"),
        spectra=light_curve_spectra_args,
    wildcard_constraints:
        analysis=analyses_regex([a for a in LIGHT_CURVE_ANALYSES if a not in LIGHT_CURVE_SPECTRA]),
    log:
        f"{LOGS}/light_curve.log",
    priority: 2
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    shell:
        "extspec light-curve {input.pha:q} --settings {params.config:q} --fit {input.fit:q}"
        " --ecsv {output.ecsv:q} --png {output.png:q}{params.spectra} --log {log:q} --quiet"


# light_curve.spectra: the same job also fits the model per time bin (spectra.ecsv/.png)
use rule light_curve as light_curve_spectra with:
    output:
        ecsv=f"{OUT}/lightcurve/lightcurve.ecsv",
        gadf=f"{OUT}/lightcurve/lightcurve_gadf.ecsv",
        png=report(
            f"{OUT}/lightcurve/lightcurve.png",
            caption="../report/lightcurve.rst",
            category="{analysis}",
            subcategory="Light curve",
        ),
        spectra_ecsv=f"{OUT}/lightcurve/spectra.ecsv",
        spectra_png=report(
            f"{OUT}/lightcurve/spectra.png",
            caption="../report/lightcurve_spectra.rst",
            category="{analysis}",
            subcategory="Light curve",
        ),
    wildcard_constraints:
        analysis=analyses_regex(LIGHT_CURVE_SPECTRA),
