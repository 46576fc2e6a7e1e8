"""The optional native kernel of the sum-tree build (por/core/_mstkernel.c).

Everything else is in pyproject.toml. The extension links OpenSSL's libcrypto (Debian:
libssl-dev, installed by ./dev setup) and is built by pip with the system C compiler.
`optional=True`: where it cannot be built (no compiler, no OpenSSL headers) the install
still succeeds and the build engine hashes with hashlib; `python bench/tree.py` and
`por.core.mst_build.NATIVE` say which path runs.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "por.core._mstkernel",
            sources=["por/core/_mstkernel.c"],
            libraries=["crypto"],
            extra_link_args=["-pthread"],
            extra_compile_args=[
                "-O3", "-std=c11", "-pthread", "-Wall", "-Wextra", "-Wno-unused-parameter"
            ],
            optional=True,
        )
    ]
)
