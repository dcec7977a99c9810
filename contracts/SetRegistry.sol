// SPDX-License-Identifier: UNLICENSED
pragma solidity 0.8.28;

/// @title SetRegistry: on-chain anchor of VES commitment chains.
/// @notice Per stream it keeps a head (headSequenceEnd, headStateRoot), starting at (0, 0x0).
///         A batch is accepted only if it extends the head exactly (VES.md "Anchoring"):
///         sequenceStart == headSequenceEnd + 1, sequenceEnd >= sequenceStart,
///         eventCount == sequenceEnd - sequenceStart + 1 and prevStateRoot == headStateRoot.
///         Hence two conflicting histories of one stream can never both be anchored.
/// @dev The contract does not recompute state roots: it enforces the chaining rule only.
contract SetRegistry {
    struct Head {
        uint64 sequenceEnd;
        bytes32 stateRoot;
    }

    /// @dev A stored batch has newStateRoot != 0 (commitBatch rejects a zero root), so that
    ///      field doubles as the existence flag.
    struct Batch {
        bytes32 streamId;
        uint64 sequenceStart;
        uint64 sequenceEnd;
        uint32 eventCount;
        uint64 blockNumber;
        bytes32 merkleRoot;
        bytes32 prevStateRoot;
        bytes32 newStateRoot;
        address submitter;
    }

    address public owner;
    mapping(address => bool) public isSubmitter;
    mapping(bytes32 => Head) private _heads;
    mapping(bytes16 => Batch) private _batches;

    event BatchCommitted(
        bytes32 indexed streamId,
        bytes16 indexed batchId,
        uint64 sequenceStart,
        uint64 sequenceEnd,
        uint32 eventCount,
        bytes32 merkleRoot,
        bytes32 prevStateRoot,
        bytes32 newStateRoot,
        address submitter
    );
    event SubmitterSet(address indexed submitter, bool allowed);
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    modifier onlyOwner() {
        require(msg.sender == owner, "SetRegistry: caller is not the owner");
        _;
    }

    /// @notice The deployer becomes owner and an authorised submitter.
    constructor() {
        owner = msg.sender;
        emit OwnershipTransferred(address(0), msg.sender);
        isSubmitter[msg.sender] = true;
        emit SubmitterSet(msg.sender, true);
    }

    /// @notice Allow (or stop allowing) `submitter` to call commitBatch.
    function setSubmitter(address submitter, bool allowed) external onlyOwner {
        require(submitter != address(0), "SetRegistry: zero submitter address");
        isSubmitter[submitter] = allowed;
        emit SubmitterSet(submitter, allowed);
    }

    /// @notice Hand ownership to `newOwner`. Submitter rights are not changed.
    function transferOwnership(address newOwner) external onlyOwner {
        require(newOwner != address(0), "SetRegistry: new owner is the zero address");
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// @notice Anchor the commitment of events [sequenceStart, sequenceEnd] of `streamId`.
    /// @dev Checks run in this order: submitter, batch id, range shape, contiguity with the
    ///      head (overlap if sequenceStart <= head, gap if sequenceStart > head + 1),
    ///      event count, previous state root, new state root.
    function commitBatch(
        bytes32 streamId,
        uint64 sequenceStart,
        uint64 sequenceEnd,
        uint32 eventCount,
        bytes32 merkleRoot,
        bytes32 prevStateRoot,
        bytes32 newStateRoot,
        bytes16 batchId
    ) external {
        require(isSubmitter[msg.sender], "SetRegistry: not an authorised submitter");
        require(batchId != bytes16(0), "SetRegistry: zero batch id");
        require(_batches[batchId].newStateRoot == bytes32(0), "SetRegistry: batch id already used");
        require(sequenceEnd >= sequenceStart, "SetRegistry: empty range");

        Head storage head = _heads[streamId];
        require(sequenceStart > head.sequenceEnd, "SetRegistry: overlapping range");
        require(sequenceStart - 1 == head.sequenceEnd, "SetRegistry: sequence gap");
        require(
            uint256(sequenceEnd) - uint256(sequenceStart) + 1 == uint256(eventCount),
            "SetRegistry: event count mismatch"
        );
        require(prevStateRoot == head.stateRoot, "SetRegistry: prev state root mismatch");
        require(newStateRoot != bytes32(0), "SetRegistry: zero new state root");

        _batches[batchId] = Batch({
            streamId: streamId,
            sequenceStart: sequenceStart,
            sequenceEnd: sequenceEnd,
            eventCount: eventCount,
            blockNumber: uint64(block.number),
            merkleRoot: merkleRoot,
            prevStateRoot: prevStateRoot,
            newStateRoot: newStateRoot,
            submitter: msg.sender
        });
        head.sequenceEnd = sequenceEnd;
        head.stateRoot = newStateRoot;

        emit BatchCommitted(
            streamId,
            batchId,
            sequenceStart,
            sequenceEnd,
            eventCount,
            merkleRoot,
            prevStateRoot,
            newStateRoot,
            msg.sender
        );
    }

    /// @notice The stream's head; (0, 0x0) for a stream never anchored.
    function getHead(bytes32 streamId) external view returns (uint64 headSequenceEnd, bytes32 headStateRoot) {
        Head storage head = _heads[streamId];
        return (head.sequenceEnd, head.stateRoot);
    }

    /// @notice Everything stored for `batchId`; all zero with exists == false if unknown.
    function getBatch(bytes16 batchId)
        external
        view
        returns (
            bytes32 streamId,
            uint64 sequenceStart,
            uint64 sequenceEnd,
            uint32 eventCount,
            bytes32 merkleRoot,
            bytes32 prevStateRoot,
            bytes32 newStateRoot,
            uint64 blockNumber,
            address submitter,
            bool exists
        )
    {
        Batch storage batch = _batches[batchId];
        streamId = batch.streamId;
        sequenceStart = batch.sequenceStart;
        sequenceEnd = batch.sequenceEnd;
        eventCount = batch.eventCount;
        merkleRoot = batch.merkleRoot;
        prevStateRoot = batch.prevStateRoot;
        newStateRoot = batch.newStateRoot;
        blockNumber = batch.blockNumber;
        submitter = batch.submitter;
        exists = batch.newStateRoot != bytes32(0);
    }
}
