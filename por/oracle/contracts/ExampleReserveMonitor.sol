// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

interface AggregatorV3InterfaceForMonitor {
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

interface IERC20Supply {
    function totalSupply() external view returns (uint256);
}

/// @title ExampleReserveAggregator — a lending market's Proof-of-Reserve registry, written the
///        way Aave's ProofOfReserveAggregator is: per asset one feed; an asset is backed when
///        `answer >= totalSupply()` of the asset on this chain (no staleness check, as Aave).
/// @notice It knows nothing of por. Before por's oracle has a round its answer is 0, so a
///         listed asset with supply reads "not backed" and the other assets are unaffected
///         (a reverting feed would make the whole call revert).
contract ExampleReserveAggregator {
    address public owner;
    mapping(address => address) public feedOf;

    event FeedSet(address indexed asset, address indexed feed);

    constructor() {
        owner = msg.sender;
    }

    function enableProofOfReserveFeed(address asset, address feed) external {
        require(msg.sender == owner, "only owner");
        require(asset != address(0) && feed != address(0), "zero address");
        feedOf[asset] = feed;
        emit FeedSet(asset, feed);
    }

    function areAllReservesBacked(address[] calldata assets) external view returns (bool, bool[] memory) {
        bool[] memory unbacked = new bool[](assets.length);
        bool allBacked = true;
        for (uint256 i = 0; i < assets.length; ++i) {
            address feed = feedOf[assets[i]];
            if (feed == address(0)) continue;
            (, int256 answer,,,) = AggregatorV3InterfaceForMonitor(feed).latestRoundData();
            if (answer < 0 || IERC20Supply(assets[i]).totalSupply() > uint256(answer)) {
                unbacked[i] = true;
                allBacked = false;
            }
        }
        return (allBacked, unbacked);
    }
}

/// @title ExampleReserveExecutor — freezes the assets the aggregator flags, as Aave's
///        ProofOfReserveExecutor does for its pool (here a `frozen` flag stands for the pool).
contract ExampleReserveExecutor {
    ExampleReserveAggregator public immutable aggregator;
    address[] public assets;
    mapping(address => bool) public frozen;

    event AssetIsNotBacked(address indexed asset);
    event EmergencyActionExecuted();

    constructor(address aggregator_, address[] memory assets_) {
        aggregator = ExampleReserveAggregator(aggregator_);
        assets = assets_;
    }

    function isEmergencyActionPossible() external view returns (bool) {
        (, bool[] memory unbacked) = aggregator.areAllReservesBacked(assets);
        for (uint256 i = 0; i < unbacked.length; ++i) {
            if (unbacked[i] && !frozen[assets[i]]) return true;
        }
        return false;
    }

    function executeEmergencyAction() external {
        (bool allBacked, bool[] memory unbacked) = aggregator.areAllReservesBacked(assets);
        if (allBacked) return;
        for (uint256 i = 0; i < unbacked.length; ++i) {
            if (unbacked[i]) {
                frozen[assets[i]] = true;
                emit AssetIsNotBacked(assets[i]);
            }
        }
        emit EmergencyActionExecuted();
    }
}
