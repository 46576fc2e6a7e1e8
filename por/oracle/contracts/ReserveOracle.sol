// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// @title ReserveOracle — por attestations on chain, read as a Chainlink Proof-of-Reserve feed.
/// @notice DESIGN §6. Implements AggregatorV3Interface with answer = eligible reserves in token
///         base units (decimals = token decimals). Each round stores the attested sequence,
///         as-of time, reserves, circulating supply, liabilities root and total, and the
///         SHA-256 digest of the signed attestation document.
///
///         `submit` is open to anyone: authority comes only from EIP-712 signatures (domain
///         binds name, version, chainId and this contract's address) by at least `threshold`
///         distinct registered attestors. Signatures must be 65 bytes r‖s‖v, v ∈ {27, 28}, low-s
///         (s ≤ secp256k1n/2, EIP-2). Sequence strictly increases; as-of increases, is not in
///         the future and not older than `maxReportAge`.
///
///         startedAt and updatedAt of a round are the attestation's as-of time (when the
///         reserves were measured), not the block time of publication, so a consumer's
///         heartbeat check measures the age of the data itself. publishedAt is kept apart.
contract ReserveOracle {
    struct Report {
        uint64 sequence;
        uint64 asOf;
        uint256 reserves;
        uint256 circulatingSupply;
        bytes32 liabilitiesRoot;
        uint256 liabilitiesTotal;
        bytes32 attestationDigest;
    }

    struct Round {
        uint64 sequence;
        uint64 asOf;
        uint64 publishedAt;
        uint256 reserves;
        uint256 circulatingSupply;
        bytes32 liabilitiesRoot;
        uint256 liabilitiesTotal;
        bytes32 attestationDigest;
    }

    string public constant EIP712_NAME = "por ReserveOracle";
    string public constant EIP712_VERSION = "1";
    bytes32 public constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant REPORT_TYPEHASH = keccak256(
        "Report(uint64 sequence,uint64 asOf,uint256 reserves,uint256 circulatingSupply,"
        "bytes32 liabilitiesRoot,uint256 liabilitiesTotal,bytes32 attestationDigest)"
    );
    // secp256k1n / 2 (EIP-2): a larger s is the malleable twin of a valid signature.
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    uint8 public immutable decimals;
    string public description;
    uint256 public constant version = 1;

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
        uint80 indexed roundId,
        uint64 indexed sequence,
        bytes32 indexed attestationDigest,
        uint64 asOf,
        uint256 reserves,
        uint256 circulatingSupply,
        bytes32 liabilitiesRoot,
        uint256 liabilitiesTotal
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
    error AnswerOutOfRange(uint256 reserves);
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

    function reportDigest(Report calldata r) public view returns (bytes32) {
        bytes32 structHash = keccak256(
            abi.encode(
                REPORT_TYPEHASH,
                r.sequence,
                r.asOf,
                r.reserves,
                r.circulatingSupply,
                r.liabilitiesRoot,
                r.liabilitiesTotal,
                r.attestationDigest
            )
        );
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(), structHash));
    }

    // ---- submission ----

    function submit(Report calldata r, bytes[] calldata signatures) external returns (uint80 roundId) {
        if (r.sequence <= latestSequence) revert SequenceNotIncreasing(latestSequence, r.sequence);
        if (r.asOf > block.timestamp) revert AsOfInFuture(r.asOf, block.timestamp);
        if (block.timestamp - r.asOf > maxReportAge) revert StaleReport(r.asOf, block.timestamp, maxReportAge);
        if (latestRoundId != 0 && r.asOf <= _rounds[latestRoundId].asOf) {
            revert AsOfNotIncreasing(_rounds[latestRoundId].asOf, r.asOf);
        }
        if (r.reserves > uint256(type(int256).max)) revert AnswerOutOfRange(r.reserves);
        if (signatures.length < threshold) revert NotEnoughSignatures(signatures.length, threshold);

        bytes32 digest = reportDigest(r);
        address[] memory seen = new address[](signatures.length);
        for (uint256 i = 0; i < signatures.length; ++i) {
            address signer = _recover(digest, signatures[i], i);
            if (!isAttestor[signer]) revert NotAttestor(signer);
            for (uint256 j = 0; j < i; ++j) {
                if (seen[j] == signer) revert DuplicateSigner(signer);
            }
            seen[i] = signer;
        }

        roundId = latestRoundId + 1;
        latestRoundId = roundId;
        latestSequence = r.sequence;
        roundIdOfSequence[r.sequence] = roundId;
        _rounds[roundId] = Round({
            sequence: r.sequence,
            asOf: r.asOf,
            publishedAt: uint64(block.timestamp),
            reserves: r.reserves,
            circulatingSupply: r.circulatingSupply,
            liabilitiesRoot: r.liabilitiesRoot,
            liabilitiesTotal: r.liabilitiesTotal,
            attestationDigest: r.attestationDigest
        });
        emit NewRound(roundId, msg.sender, r.asOf);
        emit AnswerUpdated(int256(r.reserves), roundId, r.asOf);
        emit RoundSubmitted(
            roundId, r.sequence, r.attestationDigest, r.asOf, r.reserves, r.circulatingSupply,
            r.liabilitiesRoot, r.liabilitiesTotal
        );
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

    function getRound(uint80 roundId) external view returns (Round memory) {
        if (roundId == 0 || roundId > latestRoundId) revert NoData(roundId);
        return _rounds[roundId];
    }

    function getRoundData(uint80 roundId_)
        public
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        if (roundId_ == 0 || roundId_ > latestRoundId) revert NoData(roundId_);
        Round storage rd = _rounds[roundId_];
        // answeredInRound is deprecated in Chainlink but still returned: = roundId.
        return (roundId_, int256(rd.reserves), rd.asOf, rd.asOf, roundId_);
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return getRoundData(latestRoundId);
    }
}
