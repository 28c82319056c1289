# What the Makefile builds of template.yaml share (BuildMethod makefile: layers/*/Makefile, functions/agent/Makefile).
# `sam build` runs `make build-<LogicalId>` in a copy of the Makefile's directory with ARTIFACTS_DIR set, so a Makefile
# includes this file by its own path: $(dir $(lastword $(MAKEFILE_LIST))).
#
# - requirements.txt is installed as listed, without resolving dependencies: each list is complete but for what
#   Lambda's Python runtime (boto3, botocore and theirs) or the function's layers provide, which must not be shadowed
#   by a second copy (tests/unit/test_package_lists.py);
# - the code is copied without bytecode caches, then everything is compiled to unchecked-hash bytecode for the
#   runtime's Python, which CPython reads whatever the files' dates (a zip keeps none): a cold start compiles nothing.
PYTHON ?= python3.13

# $(call install_listed,DIR)
install_listed = $(PYTHON) -m pip install --quiet --disable-pip-version-check --no-deps --no-compile \
	--target "$(1)" -r requirements.txt
# $(call copy_code,NAME,DIR): a package or module of this directory into DIR.
copy_code = $(PYTHON) -c "import os, shutil, sys; source, target = sys.argv[1], os.path.join(sys.argv[2], sys.argv[1]); \
	shutil.copytree(source, target, ignore=shutil.ignore_patterns('__pycache__', '*.pyc')) \
	if os.path.isdir(source) else shutil.copy2(source, target)" "$(1)" "$(2)"
# $(call compile_all,DIR)
compile_all = $(PYTHON) -m compileall -q -f -j 0 --invalidation-mode unchecked-hash "$(1)"
