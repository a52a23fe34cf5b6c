# Joint fits (config key `joint`): one model fitted to the spectra of several analyses at once
# (extspec joint-fit).  A fit only: the inputs are the named analyses' OGIP sets (reduced runs
# and external spectra), so adding a run to one analysis reruns its reduction, its aggregates
# and the joint fit; the params hold only the joint block, so changing its model reruns only
# this job.  One rule per joint fit (its outputs name its analyses), named joint_fit_<name>.
# Input functions: common.smk.
for _name in JOINT:

    rule:
        name:
            joint_rule_name(_name)
        input:
            joint_files(_name),
        output:
            [p if not p.endswith("sed.png") else report(p, caption="../report/joint.rst", category=_name,
                                                          subcategory="Joint fit")
             for p in joint_products(_name)],
        params:
            name=_name,
            code=CODE,
            settings=settings_json(joint_settings(_name, JOINT[_name], ANALYSES)),
            spectra=joint_spectra_args(_name),
            outdir=lambda wildcards, output: os.path.dirname(output[0]),  # <results_dir>/<name>/fit
        log:
            f"{RESULTS}/{_name}/logs/joint_fit.log",
        priority: 3
        threads: 1
        resources:
            mem_mb=2000,
            runtime=15,
        shell:
            "extspec joint-fit {params.spectra} --settings {params.settings:q} --outdir {params.outdir:q}"
            " --log {log:q} --quiet"
