// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

interface AggregatorV3InterfaceForToken {
    function decimals() external view returns (uint8);
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound);
}

/// @title ExamplePorToken — a stablecoin whose mint is guarded by a Proof-of-Reserve feed,
///        written the way existing PoR tokens are (TrueUSD's TrueCurrencyWithProofOfReserve,
///        Chainlink's PoR Secure Mint examples). It knows nothing of por: it reads any
///        AggregatorV3Interface feed.
/// @notice A mint passes only with a positive answer, `updatedAt` not in the future and within
///         `chainReserveHeartbeat`, and `totalSupply (scaled to the feed's decimals) + amount <=
///         reserves (scaled to the token's)` — the TrueUSD arithmetic, quirk included (`amount` is
///         added unscaled). Checks revert with strings, as those tokens do. por's tests deploy it
///         on two chains against ReserveOracle to show that per-chain budgets keep such tokens,
///         unchanged, from minting more across chains than the reserves hold.
contract ExamplePorToken {
    string public name;
    string public symbol;
    uint8 public immutable decimals;
    uint256 public totalSupply;
    address public owner;
    mapping(address => uint256) public balanceOf;

    address public chainReserveFeed;
    uint256 public chainReserveHeartbeat;
    bool public proofOfReserveEnabled;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event NewChainReserveFeed(address oldFeed, address newFeed);
    event NewChainReserveHeartbeat(uint256 oldHeartbeat, uint256 newHeartbeat);

    modifier onlyOwner() {
        require(msg.sender == owner, "only owner");
        _;
    }

    constructor(string memory name_, string memory symbol_, uint8 decimals_, address feed, uint256 heartbeat) {
        name = name_;
        symbol = symbol_;
        decimals = decimals_;
        owner = msg.sender;
        chainReserveFeed = feed;
        chainReserveHeartbeat = heartbeat;
        proofOfReserveEnabled = feed != address(0);
    }

    function setChainReserveFeed(address feed) external onlyOwner {
        emit NewChainReserveFeed(chainReserveFeed, feed);
        chainReserveFeed = feed;
    }

    function setChainReserveHeartbeat(uint256 heartbeat) external onlyOwner {
        emit NewChainReserveHeartbeat(chainReserveHeartbeat, heartbeat);
        chainReserveHeartbeat = heartbeat;
    }

    function mint(address account, uint256 amount) external onlyOwner {
        if (chainReserveFeed == address(0) || !proofOfReserveEnabled) {
            _mint(account, amount);
            return;
        }
        AggregatorV3InterfaceForToken feed = AggregatorV3InterfaceForToken(chainReserveFeed);
        (, int256 signedReserves,, uint256 updatedAt,) = feed.latestRoundData();
        require(signedReserves > 0, "PoR: invalid answer from feed");
        uint256 reserves = uint256(signedReserves);
        require(block.timestamp >= updatedAt, "PoR: invalid updatedAt");
        require(block.timestamp - updatedAt <= chainReserveHeartbeat, "PoR: answer too old");
        uint8 tokenDecimals = decimals;
        uint8 feedDecimals = feed.decimals();
        uint256 currentSupply = totalSupply;
        if (tokenDecimals < feedDecimals) {
            currentSupply = currentSupply * 10 ** uint256(feedDecimals - tokenDecimals);
        } else if (tokenDecimals > feedDecimals) {
            reserves = reserves * 10 ** uint256(tokenDecimals - feedDecimals);
        }
        require(currentSupply + amount <= reserves, "PoR: total supply would exceed reserves after mint");
        _mint(account, amount);
    }

    function transfer(address to, uint256 value) external returns (bool) {
        uint256 bal = balanceOf[msg.sender];
        require(bal >= value, "balance too low");
        balanceOf[msg.sender] = bal - value;
        balanceOf[to] += value;
        emit Transfer(msg.sender, to, value);
        return true;
    }

    function burn(uint256 value) external {
        uint256 bal = balanceOf[msg.sender];
        require(bal >= value, "balance too low");
        balanceOf[msg.sender] = bal - value;
        totalSupply -= value;
        emit Transfer(msg.sender, address(0), value);
    }

    function _mint(address account, uint256 amount) internal {
        require(account != address(0), "mint to zero");
        totalSupply += amount;
        balanceOf[account] += amount;
        emit Transfer(address(0), account, amount);
    }
}
