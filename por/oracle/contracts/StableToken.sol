// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// The Secure Mint check a guarded token asks before it mints (SecureMintGuard).
interface IMintGuard {
    function checkMint(uint256 amount) external view;
}

/// @title StableToken — the ERC-20 used by por's tests and demo (6 decimals, issuer mint and burn).
/// @notice Not a production token: it has no pause, freeze or upgrade logic. The batch
///         functions exist so tests and benchmarks can create thousands of holders and
///         Transfer events in a few transactions; each still emits one ERC-20 Transfer per
///         recipient, exactly as single transfers would. With a mint guard set (the demo sets
///         a SecureMintGuard), every mint first asks the guard, which reverts unless this
///         chain's por mint budget allows it.
contract StableToken {
    string public name;
    string public symbol;
    uint8 public constant decimals = 6;
    uint256 public totalSupply;
    address public issuer;
    IMintGuard public mintGuard; // zero: unguarded

    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event IssuerChanged(address indexed previousIssuer, address indexed newIssuer);
    event MintGuardChanged(address indexed previousGuard, address indexed newGuard);
    /// The issuer's mint and burn with the payment reference of the bank movement behind
    /// them (a subscription, a redemption): por's flow reconciliation matches on it.
    event Mint(address indexed to, uint256 value, bytes32 paymentRef);
    event Burn(address indexed from, uint256 value, bytes32 paymentRef);

    error NotIssuer(address caller);
    error ZeroAddress();
    error InsufficientBalance(address account, uint256 balance, uint256 needed);
    error InsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed);
    error LengthMismatch(uint256 recipients, uint256 amounts);

    modifier onlyIssuer() {
        if (msg.sender != issuer) revert NotIssuer(msg.sender);
        _;
    }

    constructor(string memory name_, string memory symbol_, address issuer_) {
        if (issuer_ == address(0)) revert ZeroAddress();
        name = name_;
        symbol = symbol_;
        issuer = issuer_;
        emit IssuerChanged(address(0), issuer_);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        _transfer(msg.sender, to, value);
        return true;
    }

    function approve(address spender, uint256 value) external returns (bool) {
        allowance[msg.sender][spender] = value;
        emit Approval(msg.sender, spender, value);
        return true;
    }

    function transferFrom(address from, address to, uint256 value) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < value) revert InsufficientAllowance(from, msg.sender, allowed, value);
            allowance[from][msg.sender] = allowed - value;
        }
        _transfer(from, to, value);
        return true;
    }

    /// Issuer mints to `to` (a treasury or a holder), if the mint guard allows it.
    function mint(address to, uint256 value) external onlyIssuer {
        _checkGuard(value);
        _mint(to, value);
    }

    /// Issuer burns from its own balance (redeemed tokens are first sent to the issuer).
    function burn(uint256 value) external onlyIssuer {
        _burn(msg.sender, value);
    }

    /// Issuer mints against a subscription; `paymentRef` is the payment's reference.
    function mintWithReference(address to, uint256 value, bytes32 paymentRef) external onlyIssuer {
        _checkGuard(value);
        _mint(to, value);
        emit Mint(to, value, paymentRef);
    }

    /// Issuer burns redeemed tokens; `paymentRef` is the redemption payout's reference.
    function burnWithReference(uint256 value, bytes32 paymentRef) external onlyIssuer {
        _burn(msg.sender, value);
        emit Burn(msg.sender, value, paymentRef);
    }

    /// Issuer sets (or, with zero, removes) the Secure Mint guard; the event makes it public.
    function setMintGuard(address guard) external onlyIssuer {
        emit MintGuardChanged(address(mintGuard), guard);
        mintGuard = IMintGuard(guard);
    }

    function _checkGuard(uint256 value) internal view {
        if (address(mintGuard) != address(0)) mintGuard.checkMint(value);
    }

    function setIssuer(address newIssuer) external onlyIssuer {
        if (newIssuer == address(0)) revert ZeroAddress();
        emit IssuerChanged(issuer, newIssuer);
        issuer = newIssuer;
    }

    /// Bulk helper: issuer mints `amounts[i]` to `to[i]`.
    function mintBatch(address[] calldata to, uint256[] calldata amounts) external onlyIssuer {
        if (to.length != amounts.length) revert LengthMismatch(to.length, amounts.length);
        if (address(mintGuard) != address(0)) {
            uint256 total;
            for (uint256 i = 0; i < amounts.length; ++i) {
                total += amounts[i];
            }
            _checkGuard(total);
        }
        for (uint256 i = 0; i < to.length; ++i) {
            _mint(to[i], amounts[i]);
        }
    }

    /// Bulk helper: the caller sends `amounts[i]` to `to[i]`.
    function transferBatch(address[] calldata to, uint256[] calldata amounts) external {
        if (to.length != amounts.length) revert LengthMismatch(to.length, amounts.length);
        for (uint256 i = 0; i < to.length; ++i) {
            _transfer(msg.sender, to[i], amounts[i]);
        }
    }

    function _transfer(address from, address to, uint256 value) internal {
        if (to == address(0)) revert ZeroAddress();
        uint256 bal = balanceOf[from];
        if (bal < value) revert InsufficientBalance(from, bal, value);
        unchecked {
            balanceOf[from] = bal - value;
        }
        balanceOf[to] += value;
        emit Transfer(from, to, value);
    }

    function _mint(address to, uint256 value) internal {
        if (to == address(0)) revert ZeroAddress();
        totalSupply += value;
        balanceOf[to] += value;
        emit Transfer(address(0), to, value);
    }

    function _burn(address from, uint256 value) internal {
        uint256 bal = balanceOf[from];
        if (bal < value) revert InsufficientBalance(from, bal, value);
        unchecked {
            balanceOf[from] = bal - value;
            totalSupply -= value;
        }
        emit Transfer(from, address(0), value);
    }
}
