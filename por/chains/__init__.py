"""Chain readers: EVM (web3.py) and Solana, behind the ChainReader protocol in base.py."""
