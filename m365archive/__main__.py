from m365archive.cli.main import run

run()
