"""The compiled modules (everything else is in pyproject.toml): a serving line's features
read into columns (exporter/sources/_feature_json.c) and a batch's numeric values binned
into window rings (exporter/state/_bins.c). Optional: without a C compiler the install
goes on, and the same columns and counts come from msgspec objects and numpy, slower
(docs/scaling.md)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "exporter.sources._feature_json",
            ["exporter/sources/_feature_json.c"],
            extra_compile_args=["-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
        Extension(
            "exporter.state._bins",
            ["exporter/state/_bins.c"],
            extra_compile_args=["-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        ),
    ]
)
