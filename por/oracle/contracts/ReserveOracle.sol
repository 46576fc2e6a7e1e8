// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title ReserveOracle — por attestations on chain, read as a Chainlink Proof-of-Reserve feed.
/// @notice DESIGN §6, docs/evm.md, docs/budgets.md. On this chain the feed's answer is THIS
///         CHAIN's mint budget (token base units, decimals = token decimals), not the global
///         reserves: every Proof-of-Reserve consumer compares the answer with its own chain's
///         supply, and the attestation shares the eligible reserves out so that the budgets of
///         all chains add up to no more than the reserves. Each round also keeps the global
///         figures (eligible reserves, total circulating), this chain's circulating supply, the
///         attestation status and the reserves' own as-of time.
///
///         Reads: AggregatorV3Interface exactly (decimals, description, version, getRoundData,
///         latestRoundData) and the AggregatorInterface (V2) reads (latestAnswer,
///         latestTimestamp, latestRound, getAnswer, getTimestamp). Before the first round
///         latestRoundData returns zeros (answer 0, updatedAt 0): every heartbeat or
///         positive-answer check refuses that, and a consumer that reads several feeds in one
///         call (Aave's aggregator) does not revert for the other assets.
///
///         updatedAt = startedAt = min(asOf, reservesAsOf): the time of the OLDEST data the
///         budget rests on — normally the custodian statement's as-of, which is older than the
///         chain snapshot — so a consumer's heartbeat bounds the age of the bank data itself.
///         A round whose reserves have no statement (none counted) has updatedAt 0: stale to
///         every consumer.
///
///         `submit` is open to anyone: authority comes only from EIP-712 signatures (domain
///         binds name, version, chainId and this contract's address) by at least `threshold`
///         distinct registered attestors. Signatures must be 65 bytes r‖s‖v, v ∈ {27, 28}, low-s
///         (s ≤ secp256k1n/2, EIP-2). Sequence strictly increases; as-of increases, is not in
///         the future and not older than `maxReportAge`. The report carries every chain's
///         (circulating, budget), keyed by keccak256 of its CAIP-2 id; the contract refuses one
///         whose budgets add up to more than the reserves, that has no budget for this chain,
///         names a chain twice, or whose budgets disagree with its status.
contract ReserveOracle {
    struct ChainBudget {
        bytes32 chain; // keccak256 of the CAIP-2 id, e.g. keccak256("eip155:56")
        uint256 circulating;
        uint256 budget;
    }

    struct Report {
        uint64 sequence;
        uint64 asOf; // the attestation's snapshot time
        uint64 reservesAsOf; // the oldest statement behind the reserves; 0: none
        uint8 status; // 1 FULLY_BACKED, 2 UNDER_COLLATERALIZED, 3 DEGRADED
        uint256 eligibleReserves;
        uint256 totalCirculating; // every liability the status is judged against
        bytes32 liabilitiesRoot;
        uint256 liabilitiesTotal;
        bytes32 attestationDigest;
        ChainBudget[] chains;
    }

    struct Round {
        uint64 sequence;
        uint64 asOf;
        uint64 reservesAsOf;
        uint64 publishedAt;
        uint128 budget; // the answer on this chain
        uint128 chainCirculating;
        uint128 eligibleReserves;
        uint128 totalCirculating;
        uint128 liabilitiesTotal;
        uint8 status;
        bytes32 liabilitiesRoot;
        bytes32 attestationDigest;
    }

    string public constant EIP712_NAME = "por ReserveOracle";
    string public constant EIP712_VERSION = "2";
    bytes32 public constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant CHAIN_BUDGET_TYPEHASH =
        keccak256("ChainBudget(bytes32 chain,uint256 circulating,uint256 budget)");
    bytes32 public constant REPORT_TYPEHASH = keccak256(
        "Report(uint64 sequence,uint64 asOf,uint64 reservesAsOf,uint8 status,uint256 eligibleReserves,"
        "uint256 totalCirculating,bytes32 liabilitiesRoot,uint256 liabilitiesTotal,bytes32 attestationDigest,"
        "ChainBudget[] chains)ChainBudget(bytes32 chain,uint256 circulating,uint256 budget)"
    );
    uint8 public constant STATUS_FULLY_BACKED = 1;
    uint8 public constant STATUS_UNDER_COLLATERALIZED = 2;
    uint8 public constant STATUS_DEGRADED = 3;
    uint256 public constant MAX_CHAINS = 64;
    // Every amount por commits to is below 2^127 (DESIGN §3); sums of 64 stay far below 2^256.
    uint256 private constant AMOUNT_LIMIT = 2 ** 127;
    // secp256k1n / 2 (EIP-2): a larger s is the malleable twin of a valid signature.
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    uint8 public immutable decimals;
    string public description;
    uint256 public constant version = 2;

    address public owner;
    uint256 public threshold;
    uint256 public attestorCount;
    uint256 public maxReportAge;
    mapping(address => bool) public isAttestor;

    uint80 public latestRoundId;
    uint64 public latestSequence;
    mapping(uint80 => Round) private _rounds;
    mapping(uint64 => uint80) public roundIdOfSequence;

    // Chainlink AggregatorInterface events, so existing indexers follow the feed.
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);
    event RoundSubmitted(
        uint80 indexed roundId, uint64 indexed sequence, bytes32 indexed attestationDigest, uint8 status, uint256 budget
    );
    event AttestorAdded(address indexed attestor);
    event AttestorRemoved(address indexed attestor);
    event ThresholdChanged(uint256 previousThreshold, uint256 newThreshold);
    event MaxReportAgeChanged(uint256 previousSeconds, uint256 newSeconds);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    error NotOwner(address caller);
    error ZeroAddress();
    error AlreadyAttestor(address attestor);
    error NotAttestor(address signer);
    error InvalidThreshold(uint256 threshold, uint256 attestorCount);
    error NotEnoughSignatures(uint256 given, uint256 threshold);
    error BadSignatureLength(uint256 index, uint256 length);
    error BadSignatureV(uint256 index, uint8 v);
    error HighS(uint256 index);
    error InvalidSignature(uint256 index);
    error DuplicateSigner(address signer);
    error SequenceNotIncreasing(uint64 latest, uint64 given);
    error AsOfInFuture(uint64 asOf, uint256 blockTimestamp);
    error AsOfNotIncreasing(uint64 latest, uint64 given);
    error StaleReport(uint64 asOf, uint256 blockTimestamp, uint256 maxReportAge);
    error AmountOutOfRange(uint256 amount);
    error UnknownStatus(uint8 status);
    error BadChainCount(uint256 count);
    error DuplicateChain(bytes32 chain);
    error NoBudgetForChain(bytes32 chain);
    error BudgetsExceedReserves(uint256 budgets, uint256 eligibleReserves);
    error CirculatingExceedsTotal(uint256 chainsCirculating, uint256 totalCirculating);
    error StatusDisagreesWithFigures(uint8 status, uint256 eligibleReserves, uint256 totalCirculating);
    error BudgetDisagreesWithStatus(bytes32 chain, uint8 status, uint256 circulating, uint256 budget);
    error NoData(uint80 roundId);

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner(msg.sender);
        _;
    }

    constructor(
        uint8 decimals_,
        string memory description_,
        address[] memory attestors,
        uint256 threshold_,
        uint256 maxReportAge_,
        address owner_
    ) {
        if (owner_ == address(0)) revert ZeroAddress();
        decimals = decimals_;
        description = description_;
        owner = owner_;
        emit OwnershipTransferred(address(0), owner_);
        for (uint256 i = 0; i < attestors.length; ++i) {
            _addAttestor(attestors[i]);
        }
        _setThreshold(threshold_);
        maxReportAge = maxReportAge_;
        emit MaxReportAgeChanged(0, maxReportAge_);
    }

    // ---- attestor set (owner) ----

    function addAttestor(address attestor) external onlyOwner {
        _addAttestor(attestor);
    }

    function removeAttestor(address attestor) external onlyOwner {
        if (!isAttestor[attestor]) revert NotAttestor(attestor);
        if (attestorCount - 1 < threshold) revert InvalidThreshold(threshold, attestorCount - 1);
        isAttestor[attestor] = false;
        attestorCount -= 1;
        emit AttestorRemoved(attestor);
    }

    function setThreshold(uint256 threshold_) external onlyOwner {
        _setThreshold(threshold_);
    }

    function setMaxReportAge(uint256 seconds_) external onlyOwner {
        emit MaxReportAgeChanged(maxReportAge, seconds_);
        maxReportAge = seconds_;
    }

    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    function _addAttestor(address attestor) internal {
        if (attestor == address(0)) revert ZeroAddress();
        if (isAttestor[attestor]) revert AlreadyAttestor(attestor);
        isAttestor[attestor] = true;
        attestorCount += 1;
        emit AttestorAdded(attestor);
    }

    function _setThreshold(uint256 threshold_) internal {
        if (threshold_ == 0 || threshold_ > attestorCount) revert InvalidThreshold(threshold_, attestorCount);
        emit ThresholdChanged(threshold, threshold_);
        threshold = threshold_;
    }

    // ---- EIP-712 ----

    /// Computed per call from block.chainid, so a chain fork cannot reuse signatures.
    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(
                DOMAIN_TYPEHASH,
                keccak256(bytes(EIP712_NAME)),
                keccak256(bytes(EIP712_VERSION)),
                block.chainid,
                address(this)
            )
        );
    }

    function _chainsHash(ChainBudget[] calldata chains) internal pure returns (bytes32) {
        bytes32[] memory hashes = new bytes32[](chains.length);
        for (uint256 i = 0; i < chains.length; ++i) {
            hashes[i] = keccak256(
                abi.encode(CHAIN_BUDGET_TYPEHASH, chains[i].chain, chains[i].circulating, chains[i].budget)
            );
        }
        return keccak256(abi.encodePacked(hashes));
    }

    function reportDigest(Report calldata r) public view returns (bytes32) {
        // Two static halves of one abi.encode: the same bytes, fewer values on the stack.
        bytes memory head = abi.encode(
            REPORT_TYPEHASH, r.sequence, r.asOf, r.reservesAsOf, r.status, r.eligibleReserves
        );
        bytes memory tail = abi.encode(
            r.totalCirculating, r.liabilitiesRoot, r.liabilitiesTotal, r.attestationDigest, _chainsHash(r.chains)
        );
        bytes32 structHash = keccak256(bytes.concat(head, tail));
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    /// keccak256 of this chain's CAIP-2 id ("eip155:<block.chainid>"): its key in a report.
    function chainKey() public view returns (bytes32) {
        return keccak256(abi.encodePacked("eip155:", _decimal(block.chainid)));
    }

    function _decimal(uint256 value) internal pure returns (bytes memory out) {
        if (value == 0) return "0";
        uint256 digits;
        for (uint256 v = value; v != 0; v /= 10) ++digits;
        out = new bytes(digits);
        for (uint256 i = digits; i > 0; --i) {
            out[i - 1] = bytes1(uint8(48 + (value % 10)));
            value /= 10;
        }
    }

    // ---- submission ----

    function submit(Report calldata r, bytes[] calldata signatures) external returns (uint80 roundId) {
        if (r.sequence <= latestSequence) revert SequenceNotIncreasing(latestSequence, r.sequence);
        if (r.asOf > block.timestamp) revert AsOfInFuture(r.asOf, block.timestamp);
        if (block.timestamp - r.asOf > maxReportAge) revert StaleReport(r.asOf, block.timestamp, maxReportAge);
        if (latestRoundId != 0 && r.asOf <= _rounds[latestRoundId].asOf) {
            revert AsOfNotIncreasing(_rounds[latestRoundId].asOf, r.asOf);
        }
        (uint256 budget, uint256 chainCirculating) = _checkFigures(r);
        _checkSignatures(reportDigest(r), signatures);

        roundId = latestRoundId + 1;
        latestRoundId = roundId;
        latestSequence = r.sequence;
        roundIdOfSequence[r.sequence] = roundId;
        Round storage rd = _rounds[roundId];
        rd.sequence = r.sequence;
        rd.asOf = r.asOf;
        rd.reservesAsOf = r.reservesAsOf;
        rd.publishedAt = uint64(block.timestamp);
        rd.budget = uint128(budget);
        rd.chainCirculating = uint128(chainCirculating);
        rd.eligibleReserves = uint128(r.eligibleReserves);
        rd.totalCirculating = uint128(r.totalCirculating);
        rd.liabilitiesTotal = uint128(r.liabilitiesTotal);
        rd.status = r.status;
        rd.liabilitiesRoot = r.liabilitiesRoot;
        rd.attestationDigest = r.attestationDigest;
        uint256 updatedAt = _updatedAt(rd);
        emit NewRound(roundId, msg.sender, updatedAt);
        emit AnswerUpdated(int256(budget), roundId, updatedAt);
        emit RoundSubmitted(roundId, r.sequence, r.attestationDigest, r.status, budget);
    }

    /// The report's own arithmetic; returns this chain's (budget, circulating).
    function _checkFigures(Report calldata r) internal view returns (uint256 budget, uint256 circulating) {
        if (r.status < STATUS_FULLY_BACKED || r.status > STATUS_DEGRADED) revert UnknownStatus(r.status);
        _amount(r.eligibleReserves);
        _amount(r.totalCirculating);
        _amount(r.liabilitiesTotal);
        uint256 n = r.chains.length;
        if (n == 0 || n > MAX_CHAINS) revert BadChainCount(n);
        bool backed = r.status == STATUS_FULLY_BACKED;
        if (backed != (r.eligibleReserves >= r.totalCirculating) && r.status != STATUS_DEGRADED) {
            revert StatusDisagreesWithFigures(r.status, r.eligibleReserves, r.totalCirculating);
        }
        bytes32 own = chainKey();
        bool found;
        uint256 budgets;
        uint256 circulatingSum;
        for (uint256 i = 0; i < n; ++i) {
            ChainBudget calldata c = r.chains[i];
            _amount(c.circulating);
            _amount(c.budget);
            for (uint256 j = 0; j < i; ++j) {
                if (r.chains[j].chain == c.chain) revert DuplicateChain(c.chain);
            }
            // FULLY_BACKED: never below circulating; otherwise: zero headroom (docs/budgets.md).
            if (backed ? c.budget < c.circulating : c.budget > c.circulating) {
                revert BudgetDisagreesWithStatus(c.chain, r.status, c.circulating, c.budget);
            }
            budgets += c.budget;
            circulatingSum += c.circulating;
            if (c.chain == own) {
                found = true;
                budget = c.budget;
                circulating = c.circulating;
            }
        }
        if (!found) revert NoBudgetForChain(own);
        if (budgets > r.eligibleReserves) revert BudgetsExceedReserves(budgets, r.eligibleReserves);
        if (circulatingSum > r.totalCirculating) revert CirculatingExceedsTotal(circulatingSum, r.totalCirculating);
    }

    function _amount(uint256 value) internal pure {
        if (value >= AMOUNT_LIMIT) revert AmountOutOfRange(value);
    }

    function _checkSignatures(bytes32 digest, bytes[] calldata signatures) internal view {
        if (signatures.length < threshold) revert NotEnoughSignatures(signatures.length, threshold);
        address[] memory seen = new address[](signatures.length);
        for (uint256 i = 0; i < signatures.length; ++i) {
            address signer = _recover(digest, signatures[i], i);
            if (!isAttestor[signer]) revert NotAttestor(signer);
            for (uint256 j = 0; j < i; ++j) {
                if (seen[j] == signer) revert DuplicateSigner(signer);
            }
            seen[i] = signer;
        }
    }

    function _recover(bytes32 digest, bytes calldata sig, uint256 index) internal pure returns (address) {
        if (sig.length != 65) revert BadSignatureLength(index, sig.length);
        bytes32 r = bytes32(sig[0:32]);
        bytes32 s = bytes32(sig[32:64]);
        uint8 v = uint8(sig[64]);
        if (v != 27 && v != 28) revert BadSignatureV(index, v);
        if (uint256(s) > HALF_N) revert HighS(index);
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert InvalidSignature(index);
        return signer;
    }

    // ---- reads ----

    /// min(asOf, reservesAsOf); 0 when the reserves rest on no statement.
    function _updatedAt(Round storage rd) internal view returns (uint256) {
        if (rd.reservesAsOf == 0) return 0;
        return rd.reservesAsOf < rd.asOf ? rd.reservesAsOf : rd.asOf;
    }

    function getRound(uint80 roundId) external view returns (Round memory) {
        if (roundId == 0 || roundId > latestRoundId) revert NoData(roundId);
        return _rounds[roundId];
    }

    /// The latest round's attestation status (1, 2, 3), or 0 before the first round.
    function latestStatus() external view returns (uint8) {
        return _rounds[latestRoundId].status;
    }

    function getRoundData(uint80 roundId_)
        public
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        if (roundId_ == 0 || roundId_ > latestRoundId) revert NoData(roundId_);
        Round storage rd = _rounds[roundId_];
        uint256 at = _updatedAt(rd);
        // answeredInRound is deprecated in Chainlink but still returned: = roundId.
        return (roundId_, int256(uint256(rd.budget)), at, at, roundId_);
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        if (latestRoundId == 0) return (0, 0, 0, 0, 0); // no round yet: answer 0, updatedAt 0
        return getRoundData(latestRoundId);
    }

    // ---- AggregatorInterface (V2) reads: 0 for a round that does not exist ----

    function latestAnswer() external view returns (int256) {
        return int256(uint256(_rounds[latestRoundId].budget));
    }

    function latestTimestamp() external view returns (uint256) {
        return latestRoundId == 0 ? 0 : _updatedAt(_rounds[latestRoundId]);
    }

    function latestRound() external view returns (uint256) {
        return latestRoundId;
    }

    function getAnswer(uint256 roundId) external view returns (int256) {
        if (roundId == 0 || roundId > latestRoundId) return 0;
        return int256(uint256(_rounds[uint80(roundId)].budget));
    }

    function getTimestamp(uint256 roundId) external view returns (uint256) {
        if (roundId == 0 || roundId > latestRoundId) return 0;
        return _updatedAt(_rounds[uint80(roundId)]);
    }
}
