// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// What the guard reads of a por ReserveOracle: the Chainlink V3 round plus the status.
interface IReserveOracleRead {
    function decimals() external view returns (uint8);
    function latestStatus() external view returns (uint8);
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

interface IGuardedToken {
    function totalSupply() external view returns (uint256);
    function decimals() external view returns (uint8);
}

/// @title SecureMintGuard — Secure Mint for the issuer's own token on one chain.
/// @notice docs/budgets.md. A mint of `amount` passes only if, in the oracle's latest round:
///         there is a round; its status is FULLY_BACKED; it is fresh (updatedAt, the as-of of
///         the oldest bank statement behind it, is at most `heartbeat` seconds old and not in
///         the future); the feed's decimals equal the token's; and
///         `totalSupply() + amount <= budget` (the round's answer: this chain's mint budget).
///         Because the budgets of all chains add up to at most the eligible reserves, no race
///         of mints across chains can take the whole issue above the reserves.
///
///         The token calls `checkMint(amount)` before it mints (it reverts with the reason);
///         `mintable()` tells a UI how much may be minted now. The heartbeat is set per chain
///         at deployment (`por oracle deploy`) and may be changed by the owner.
contract SecureMintGuard {
    uint8 private constant STATUS_FULLY_BACKED = 1;

    IReserveOracleRead public immutable oracle;
    IGuardedToken public immutable token;
    address public owner;
    uint256 public heartbeat;

    event HeartbeatChanged(uint256 previousSeconds, uint256 newSeconds);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner(address caller);
    error ZeroAddress();
    error InvalidHeartbeat(uint256 heartbeat);
    error NoRound();
    error NotFullyBacked(uint8 status);
    error StaleRound(uint256 updatedAt, uint256 blockTimestamp, uint256 heartbeat);
    error DecimalsMismatch(uint8 feedDecimals, uint8 tokenDecimals);
    error MintExceedsBudget(uint256 totalSupply, uint256 amount, uint256 budget);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor(address oracle_, address token_, uint256 heartbeat_, address owner_) {
        if (oracle_ == address(0) || token_ == address(0) || owner_ == address(0)) revert ZeroAddress();
        if (heartbeat_ == 0) revert InvalidHeartbeat(heartbeat_);
        oracle = IReserveOracleRead(oracle_);
        token = IGuardedToken(token_);
        owner = owner_;
        heartbeat = heartbeat_;
        emit OwnershipTransferred(address(0), owner_);
        emit HeartbeatChanged(0, heartbeat_);
    }

    function setHeartbeat(uint256 heartbeat_) external onlyOwner {
        if (heartbeat_ == 0) revert InvalidHeartbeat(heartbeat_);
        emit HeartbeatChanged(heartbeat, heartbeat_);
        heartbeat = heartbeat_;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// This chain's budget from a fresh, fully backed round of matching decimals; else revert.
    function budget() public view returns (uint256) {
        (uint80 roundId, int256 answer,, uint256 updatedAt,) = oracle.latestRoundData();
        if (roundId == 0) revert NoRound();
        uint8 status = oracle.latestStatus();
        if (status != STATUS_FULLY_BACKED) revert NotFullyBacked(status);
        if (updatedAt == 0 || updatedAt > block.timestamp || block.timestamp - updatedAt > heartbeat) {
            revert StaleRound(updatedAt, block.timestamp, heartbeat);
        }
        uint8 feedDecimals = oracle.decimals();
        uint8 tokenDecimals = token.decimals();
        if (feedDecimals != tokenDecimals) revert DecimalsMismatch(feedDecimals, tokenDecimals);
        return answer > 0 ? uint256(answer) : 0;
    }

    /// Reverts unless `amount` more tokens may be minted now.
    function checkMint(uint256 amount) external view {
        uint256 b = budget();
        uint256 supply = token.totalSupply();
        if (supply + amount > b) revert MintExceedsBudget(supply, amount, b);
    }

    /// How much may be minted now (0 when the budget is used up); reverts like `budget()`.
    function mintable() external view returns (uint256) {
        uint256 b = budget();
        uint256 supply = token.totalSupply();
        return supply >= b ? 0 : b - supply;
    }
}
