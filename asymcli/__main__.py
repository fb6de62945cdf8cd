"""``python -m asymcli``: the ``asym`` command run by a given interpreter (the Snakemake rules
call it this way, so a job runs the asym that started the workflow, whatever PATH holds)."""

from asymcli.cli import main

if __name__ == "__main__":
    main(prog_name="asym")  # usage and error lines name `asym`, as the installed command's do
