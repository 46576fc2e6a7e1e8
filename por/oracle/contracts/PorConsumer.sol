// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// Chainlink's AggregatorV3Interface, verbatim in shape, as a Proof-of-Reserve consumer sees it.
interface AggregatorV3Interface {
    function decimals() external view returns (uint8);
    function description() external view returns (string memory);
    function version() external view returns (uint256);
    function getRoundData(uint80 _roundId)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

interface ISupply {
    function totalSupply() external view returns (uint256);
    function decimals() external view returns (uint8);
}

/// @title PorConsumer — a Secure-Mint style check written the way Chainlink PoR consumers are.
/// @notice It knows nothing about por: it reads any AggregatorV3Interface feed, refuses a
///         stale (older than the heartbeat) or non-positive answer, scales the feed's decimals
///         to the token's, and allows a mint only if totalSupply + amount <= reserves.
contract PorConsumer {
    AggregatorV3Interface public immutable feed;
    ISupply public immutable token;
    uint256 public immutable heartbeat;

    error StaleAnswer(uint256 updatedAt, uint256 nowTs, uint256 heartbeat);
    error NonPositiveAnswer(int256 answer);
    error IncompleteRound(uint80 roundId, uint80 answeredInRound);

    constructor(address feed_, address token_, uint256 heartbeat_) {
        feed = AggregatorV3Interface(feed_);
        token = ISupply(token_);
        heartbeat = heartbeat_;
    }

    /// Reserves in token base units, or revert if the feed cannot be trusted right now.
    function reserves() public view returns (uint256) {
        (uint80 roundId, int256 answer,, uint256 updatedAt, uint80 answeredInRound) = feed.latestRoundData();
        if (answer <= 0) revert NonPositiveAnswer(answer);
        if (answeredInRound < roundId) revert IncompleteRound(roundId, answeredInRound);
        if (updatedAt > block.timestamp || block.timestamp - updatedAt > heartbeat) {
            revert StaleAnswer(updatedAt, block.timestamp, heartbeat);
        }
        uint8 feedDecimals = feed.decimals();
        uint8 tokenDecimals = token.decimals();
        uint256 r = uint256(answer);
        if (feedDecimals < tokenDecimals) return r * 10 ** (tokenDecimals - feedDecimals);
        if (feedDecimals > tokenDecimals) return r / 10 ** (feedDecimals - tokenDecimals);
        return r;
    }

    /// Secure Mint: may `amount` more tokens be minted without exceeding the reserves?
    function canMint(uint256 amount) external view returns (bool) {
        return token.totalSupply() + amount <= reserves();
    }
}
