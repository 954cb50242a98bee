# Two entry points (see README.md): `make book` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PROFILE ?= default

.PHONY: setup results book test test-fast nbval-refs nbval-fixture mutation benchmark clean lab

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[book,test]' 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	$(PY) -c "import prunecxr, torch, torchvision, submitit, torch_pruning, jupyter_book, papermill, nbval, sklearn, nbstripout"
	sh scripts/git_filters.sh $(PY)
	touch $(STAMP)

setup: $(STAMP)

## The main job on the embedded default dataset: data, population, pruning sweep.
results: $(STAMP)
	$(PY) -m prunecxr run --profile $(PROFILE)

## Runs the main job (if not cached), executes every chapter with papermill, builds _build/html.
book: $(STAMP)
	$(PY) -m prunecxr book --profile $(PROFILE)

## The whole test suite (unit, pipeline, notebooks via nbval, book and browser checks).
test: $(STAMP)
	$(PY) -m pytest

## Unit tests only (skips the slow end-to-end tests).
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

## Regenerate the nbval reference notebooks from the frozen smoke results in
## tests/fixtures/smoke_results (no training; every chapter, or some:
## make nbval-refs CHAPTERS="q1_overall q4_pies"), after an intended change of a chapter.
nbval-refs: $(STAMP)
	$(PY) -m prunecxr.book refs $(CHAPTERS)

## Refreeze tests/fixtures/smoke_results from a fresh smoke run, then every nbval reference,
## after an intended change of the pipeline's results (its bits depend on the CPU: review the diff).
nbval-fixture: $(STAMP)
	$(PY) -c "from prunecxr.book.refs import regenerate_fixture; print(*regenerate_fixture(), sep='\n')"

## Mutation testing (by hand, not in CI): mutmut mutates the science (metrics, prune, stats,
## analysis/, claims/) and the pipeline (config, train, compress, sweep, store, layout,
## pipeline) listed in [tool.mutmut] of pyproject.toml, runs each mutant against the fast tests
## of its module ([tool.prunecxr.mutation_tests]) that reach the mutated function, and writes the
## score per module, the accepted survivors (tests/mutation_accepted.toml) and the diff of every
## unexplained one to mutation-report.txt. It resumes: an interrupted run, or one after an edit,
## tests only what has no result yet (mutmut keeps results by function; `rm -rf mutants` starts
## over). Rerun chosen mutants with their names: make mutation MUTANTS="prunecxr.train.*"; after
## new tests, the ones they may kill (survivors not accepted, timeouts, unchecked), e.g. of store:
## make mutation MUTANTS="$(.venv/bin/python scripts/mutation_report.py --rerun store)".
mutation: $(STAMP)
	$(PY) -c "import mutmut" 2>/dev/null || $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[mutation]' 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	nice -n 19 $(VENV)/bin/mutmut run --max-children $(or $(JOBS),2) $(MUTANTS) || true
	$(PY) scripts/mutation_report.py --out mutation-report.txt

## Edit the chapters interactively: JupyterLab with the jupyterlab-myst extension (the chapters'
## MyST renders as in the book), installed into .venv with the constraints on first use, and
## the `python3` kernel the notebooks name registered as .venv's Python; opened on notebooks/.
## Outputs never reach git (nbstripout filter).
lab: $(STAMP)
	$(PY) -c "import jupyterlab, jupyterlab_myst" 2>/dev/null || $(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt 'jupyterlab>=4,<5' jupyterlab-myst 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (prunecxr)" >/dev/null
	cd notebooks && ../$(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root)

## Speed and the default's preconditions: training levers, sweep vs bare, the whole main job.
benchmark: $(STAMP)
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/sweep_speed.py
	$(PY) benchmarks/main_job.py
	$(PY) benchmarks/gpu_speed.py

clean:
	rm -rf _build book/_generated .pytest_cache
