# Set-up and everyday commands. Every target installs first; that returns at
# once while tools/install.sh, setup.py and requirements/*.txt are unchanged
# since the last install (`bash tools/install.sh --force` checks again).
PYTHON := $(if $(VIRTUAL_ENV),python,.venv/bin/python)
DEMO_CONFIG := configs/demo/ssql-simsiam_resnet18-w16_cpu-demo_cifar10-subset.py
# CIFAR-10 as train/ and test/ class folders or train.tar.gz and test.tar.gz.
CIFAR10 ?= ../shared/data/cifar10

.PHONY: install demo compare test benchmark repro

install:
	bash tools/install.sh

demo: install
	$(PYTHON) tools/train.py $(DEMO_CONFIG) --work-dir work_dirs/demo

compare: install
	$(PYTHON) tools/compare_zoo.py --data $(CIFAR10)

repro: install
	$(PYTHON) tools/benchmarks/repro_cifar10.py --data $(CIFAR10)

test: install
	$(PYTHON) -m pytest tests -q

benchmark: install
	$(PYTHON) tools/benchmarks/step_time.py --batch-size 32 --threads 2
