"""Chain readers: EVM (web3.py) and Solana, behind the ChainReader protocol in base.py.

Only real readers live here; the in-memory fake, the anvil node and the LiteSVM sim are
in por.demo.
"""
