"""Package discovery that pyproject.toml cannot express on its own.

`agents/`, `topics/` and `models/` live at the repository top but install as
`guardstream.agents`, `guardstream.topics` and `guardstream.models` (see
`package-dir` in pyproject.toml); their subpackages are found here so that a new
subpackage never silently drops out of the wheel.
"""

from setuptools import find_packages, setup

MAPPED = ("agents", "topics", "models")

packages = find_packages(include=["guardstream", "guardstream.*"])
for top in MAPPED:
    packages.append(f"guardstream.{top}")
    packages += [f"guardstream.{top}.{sub}" for sub in find_packages(where=top)]

setup(packages=packages)
