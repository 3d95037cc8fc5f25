"""TensorFlow SavedModel (`saved_model.pb`), frozen GraphDef (`.pb`) and Keras `keras_metadata.pb`.

TensorFlow is not needed (and not imported): a small protobuf wire-format reader walks
SavedModel -> MetaGraphDef -> GraphDef -> NodeDef and the FunctionDef library, so every op the
graph can run is listed. Ops that run Python, write or read files, talk to the network, or come
from a custom op library are reported, as are checkpoint and asset paths that leave the model's
folder. Keras metadata stored with the graph (SavedObjectGraph user objects, `keras_metadata.pb`)
gets the Keras config checks (Lambda bytecode is rebuilt from it by `tf.keras` loaders).
`fingerprint.pb` is recognised so that SavedModel folders do not show up as unknown files.
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from secmlops.errors import ScanError
from secmlops.findings import Rule
from secmlops.scan.models.engine import Blob, ScanContext
from secmlops.scan.models.formats.keras import check_keras_config, parse_config_json
from secmlops.scan.models.rules import TF_ASSET_PATH, TF_CUSTOM_OP, TF_DANGEROUS_OP, TF_FILE_ACCESS

MAX_NODES = 5_000_000
MAX_FUNCTIONS = 500_000
MAX_STRINGS = 64
MAX_LISTED = 20
MAX_RESOLVE = 32
MAX_IN_MEMORY = 2**31  # protobuf's own limit for one message

# Ops that run Python or write arbitrary files: (why).
CODE_OPS: dict[str, str] = {
    "PyFunc": "calls a Python function registered in the loading process",
    "PyFuncStateless": "calls a Python function registered in the loading process",
    "EagerPyFunc": "calls a Python function registered in the loading process",
    "WriteFile": "writes graph-controlled bytes to a graph-controlled path",
}
# Ops that touch files or the network: (why, indices of inputs that carry paths).
FILE_OPS: dict[str, tuple[str, tuple[int, ...]]] = {
    "ReadFile": ("reads a file", (0,)),
    "MatchingFiles": ("lists files matching a pattern", (0,)),
    "MatchingFilesDataset": ("lists files matching a pattern", (0,)),
    "ExperimentalMatchingFilesDataset": ("lists files matching a pattern", (0,)),
    "WholeFileReader": ("reads whole files", ()),
    "WholeFileReaderV2": ("reads whole files", ()),
    "TextLineReader": ("reads text files", ()),
    "TextLineReaderV2": ("reads text files", ()),
    "FixedLengthRecordReader": ("reads files", ()),
    "FixedLengthRecordReaderV2": ("reads files", ()),
    "TFRecordReader": ("reads TFRecord files", ()),
    "TFRecordReaderV2": ("reads TFRecord files", ()),
    "LMDBReader": ("reads LMDB files", ()),
    "TextLineDataset": ("reads text files", (0,)),
    "TFRecordDataset": ("reads TFRecord files", (0,)),
    "TFRecordDatasetV2": ("reads TFRecord files", (0,)),
    "FixedLengthRecordDataset": ("reads files", (0,)),
    "FixedLengthRecordDatasetV2": ("reads files", (0,)),
    "LMDBDataset": ("reads LMDB files", (0,)),
    "ExperimentalLMDBDataset": ("reads LMDB files", (0,)),
    "CSVDataset": ("reads CSV files", (0,)),
    "CSVDatasetV2": ("reads CSV files", (0,)),
    "ExperimentalCSVDataset": ("reads CSV files", (0,)),
    "SqlDataset": ("runs SQL queries against a database", (1,)),
    "ExperimentalSqlDataset": ("runs SQL queries against a database", (1,)),
    "LoadDataset": ("reads a saved dataset", (0,)),
    "SnapshotChunkDataset": ("reads snapshot files", (0,)),
    "SnapshotDatasetReader": ("reads snapshot files", (0,)),
    "ListSnapshotChunksDataset": ("lists snapshot files", (0,)),
    "RecordInput": ("reads files matching a pattern", ()),
    "GenerateVocabRemapping": ("reads vocabulary files", (0, 1)),
    "LoadAndRemapMatrix": ("reads a checkpoint file", (0,)),
    "SaveDataset": ("writes a dataset to files", (1,)),
    "SaveDatasetV2": ("writes a dataset to files", (1,)),
    "DatasetToTFRecord": ("writes a TFRecord file", (1,)),
    "ExperimentalDatasetToTFRecord": ("writes a TFRecord file", (1,)),
    "DistributedSave": ("writes a dataset to files", (1,)),
    "SnapshotDataset": ("writes snapshot files", (1,)),
    "SnapshotDatasetV2": ("writes snapshot files", (1,)),
    "CreateSummaryFileWriter": ("writes summary files", (1,)),
    "CreateSummaryDbWriter": ("writes a summary database", (1,)),
    "WriteSummary": ("writes summaries", ()),
    "WriteScalarSummary": ("writes summaries", ()),
    "WriteHistogramSummary": ("writes summaries", ()),
    "WriteImageSummary": ("writes summaries", ()),
    "WriteAudioSummary": ("writes summaries", ()),
    "WriteGraphSummary": ("writes summaries", ()),
    "WriteRawProtoSummary": ("writes summaries", ()),
    "ImportEvent": ("writes summary events", ()),
    "FileSystemSetConfiguration": ("reconfigures file systems", ()),
    "DataServiceDataset": ("reads from a tf.data service over the network", ()),
    "DataServiceDatasetV2": ("reads from a tf.data service over the network", ()),
    "DataServiceDatasetV3": ("reads from a tf.data service over the network", ()),
    "DataServiceDatasetV4": ("reads from a tf.data service over the network", ()),
    "RegisterDataset": ("sends a dataset to a tf.data service over the network", ()),
    "RegisterDatasetV2": ("sends a dataset to a tf.data service over the network", ()),
}
# Ops that need a path but are normal in SavedModels: reported only for literal odd paths.
PATH_OPS: dict[str, tuple[int, ...]] = {
    "Save": (0,), "SaveV2": (0,), "SaveSlices": (0,), "Restore": (0,), "RestoreV2": (0,),
    "RestoreSlice": (0,), "MergeV2Checkpoints": (0, 1), "InitializeTableFromTextFile": (1,),
    "InitializeTableFromTextFileV2": (1,), "CacheDataset": (1,), "CacheDatasetV2": (1,),
    "FixedUnigramCandidateSampler": (),
}  # fmt: skip
DEBUG_OPS = frozenset(
    {"DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
     "DebugNumericSummary", "DebugNumericSummaryV2"}
)  # fmt: skip
# Nodes whose output is (a function of) their inputs' strings: followed to find literal paths.
PASS_THROUGH = frozenset(
    {"Identity", "IdentityN", "PlaceholderWithDefault", "StringJoin", "ShardedFilename",
     "ShardedFilespec", "Pack", "ConcatV2", "StopGradient", "Snapshot"}
)  # fmt: skip
SHELL_LIKE = re.compile(r"shell|exec|system|popen|subprocess|command|spawn", re.IGNORECASE)
OP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_>.\-]*$")
_DRIVE = re.compile(r"^[A-Za-z]:")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

# Every op in TensorFlow's public op registry (tf.raw_ops). Ops starting with `_` (internal) and
# `Xla` (tf2xla) are accepted by prefix; anything else comes from a custom op library.
_CORE_OPS_TEXT = """
    Abort Abs AccumulateNV2 AccumulatorApplyGradient AccumulatorNumAccumulated
    AccumulatorSetGlobalStep AccumulatorTakeGradient Acos Acosh Add AddManySparseToTensorsMap AddN
    AddSparseToTensorsMap AddV2 AdjustContrast AdjustContrastv2 AdjustHue AdjustSaturation All
    AllCandidateSampler AllToAll Angle AnonymousHashTable AnonymousIterator AnonymousIteratorV2
    AnonymousIteratorV3 AnonymousMemoryCache AnonymousMultiDeviceIterator
    AnonymousMultiDeviceIteratorV3 AnonymousMutableDenseHashTable AnonymousMutableHashTable
    AnonymousMutableHashTableOfTensors AnonymousRandomSeedGenerator AnonymousSeedGenerator Any
    ApplyAdaMax ApplyAdadelta ApplyAdagrad ApplyAdagradDA ApplyAdagradV2 ApplyAdam ApplyAddSign
    ApplyCenteredRMSProp ApplyFtrl ApplyFtrlV2 ApplyGradientDescent ApplyMomentum ApplyPowerSign
    ApplyProximalAdagrad ApplyProximalGradientDescent ApplyRMSProp ApproxTopK ApproximateEqual
    ArgMax ArgMin AsString Asin Asinh Assert AssertCardinalityDataset AssertNextDataset
    AssertPrevDataset Assign AssignAdd AssignAddVariableOp AssignSub AssignSubVariableOp
    AssignVariableOp AssignVariableXlaConcatND Atan Atan2 Atanh AudioSpectrogram AudioSummary
    AudioSummaryV2 AutoShardDataset AvgPool AvgPool3D AvgPool3DGrad AvgPoolGrad
    BandedTriangularSolve Barrier BarrierClose BarrierIncompleteSize BarrierInsertMany
    BarrierReadySize BarrierTakeMany Batch BatchCholesky BatchCholeskyGrad BatchDataset
    BatchDatasetV2 BatchFFT BatchFFT2D BatchFFT3D BatchFunction BatchIFFT BatchIFFT2D BatchIFFT3D
    BatchMatMul BatchMatMulV2 BatchMatMulV3 BatchMatrixBandPart BatchMatrixDeterminant
    BatchMatrixDiag BatchMatrixDiagPart BatchMatrixInverse BatchMatrixSetDiag BatchMatrixSolve
    BatchMatrixSolveLs BatchMatrixTriangularSolve BatchNormWithGlobalNormalization
    BatchNormWithGlobalNormalizationGrad BatchSelfAdjointEig BatchSelfAdjointEigV2 BatchSvd
    BatchToSpace BatchToSpaceND BesselI0 BesselI0e BesselI1 BesselI1e BesselJ0 BesselJ1 BesselK0
    BesselK0e BesselK1 BesselK1e BesselY0 BesselY1 Betainc BiasAdd BiasAddGrad BiasAddV1 Bincount
    Bitcast BitwiseAnd BitwiseOr BitwiseXor BlockLSTM BlockLSTMGrad BlockLSTMGradV2 BlockLSTMV2
    BoostedTreesAggregateStats BoostedTreesBucketize BoostedTreesCalculateBestFeatureSplit
    BoostedTreesCalculateBestFeatureSplitV2 BoostedTreesCalculateBestGainsPerFeature
    BoostedTreesCenterBias BoostedTreesCreateEnsemble BoostedTreesCreateQuantileStreamResource
    BoostedTreesDeserializeEnsemble BoostedTreesEnsembleResourceHandleOp
    BoostedTreesExampleDebugOutputs BoostedTreesFlushQuantileSummaries
    BoostedTreesGetEnsembleStates BoostedTreesMakeQuantileSummaries BoostedTreesMakeStatsSummary
    BoostedTreesPredict BoostedTreesQuantileStreamResourceAddSummaries
    BoostedTreesQuantileStreamResourceDeserialize BoostedTreesQuantileStreamResourceFlush
    BoostedTreesQuantileStreamResourceGetBucketBoundaries
    BoostedTreesQuantileStreamResourceHandleOp BoostedTreesSerializeEnsemble
    BoostedTreesSparseAggregateStats BoostedTreesSparseCalculateBestFeatureSplit
    BoostedTreesTrainingPredict BoostedTreesUpdateEnsemble BoostedTreesUpdateEnsembleV2
    BroadcastArgs BroadcastGradientArgs BroadcastTo Bucketize BytesProducedStatsDataset
    CSRSparseMatrixComponents CSRSparseMatrixToDense CSRSparseMatrixToSparseTensor CSVDataset
    CSVDatasetV2 CTCBeamSearchDecoder CTCGreedyDecoder CTCLoss CTCLossV2 CacheDataset
    CacheDatasetV2 Case Cast Ceil CheckNumerics CheckNumericsV2 CheckPinned Cholesky CholeskyGrad
    ChooseFastestBranchDataset ChooseFastestDataset ClipByValue CloseSummaryWriter
    CollectiveAllToAllV2 CollectiveAllToAllV3 CollectiveAssignGroupV2 CollectiveBcastRecv
    CollectiveBcastRecvV2 CollectiveBcastSend CollectiveBcastSendV2 CollectiveGather
    CollectiveGatherV2 CollectiveInitializeCommunicator CollectivePermute CollectiveReduce
    CollectiveReduceScatterV2 CollectiveReduceV2 CollectiveReduceV3 CombinedNonMaxSuppression
    Complex ComplexAbs CompositeTensorVariantFromComponents CompositeTensorVariantToComponents
    CompressElement ComputeAccidentalHits ComputeBatchSize Concat ConcatOffset ConcatV2
    ConcatenateDataset ConditionalAccumulator ConfigureDistributedTPU ConfigureTPUEmbedding Conj
    ConjugateTranspose Const ConsumeMutexLock ControlTrigger Conv Conv2D Conv2DBackpropFilter
    Conv2DBackpropFilterV2 Conv2DBackpropInput Conv2DBackpropInputV2 Conv3D Conv3DBackpropFilter
    Conv3DBackpropFilterV2 Conv3DBackpropInput Conv3DBackpropInputV2 ConvertToCooTensor
    ConvertToListOfSparseCoreCooTensors ConvertToSparseCoreCsrWrappedCooTensor Copy CopyHost Cos
    Cosh CountUpTo CreateSummaryDbWriter CreateSummaryFileWriter CropAndResize
    CropAndResizeGradBoxes CropAndResizeGradImage Cross CrossReplicaSum CudnnRNN CudnnRNNBackprop
    CudnnRNNBackpropV2 CudnnRNNBackpropV3 CudnnRNNCanonicalToParams CudnnRNNCanonicalToParamsV2
    CudnnRNNParamsSize CudnnRNNParamsToCanonical CudnnRNNParamsToCanonicalV2 CudnnRNNV2 CudnnRNNV3
    Cumprod Cumsum CumulativeLogsumexp DataFormatDimMap DataFormatVecPermute DataServiceDataset
    DataServiceDatasetV2 DataServiceDatasetV3 DataServiceDatasetV4 DatasetCardinality
    DatasetFingerprint DatasetFromGraph DatasetToGraph DatasetToGraphV2 DatasetToSingleElement
    DatasetToTFRecord Dawsn DebugGradientIdentity DebugGradientRefIdentity DebugIdentity
    DebugIdentityV2 DebugIdentityV3 DebugNanCount DebugNumericSummary DebugNumericSummaryV2
    DecodeAndCropJpeg DecodeBase64 DecodeBmp DecodeCSV DecodeCompressed DecodeGif DecodeImage
    DecodeJSONExample DecodeJpeg DecodeJxl DecodePaddedRaw DecodePng DecodeProtoV2 DecodeRaw
    DecodeWav DecodeWebP DeepCopy DeleteIterator DeleteMemoryCache DeleteMultiDeviceIterator
    DeleteRandomSeedGenerator DeleteSeedGenerator DeleteSessionTensor DenseBincount
    DenseCountSparseOutput DenseToCSRSparseMatrix DenseToDenseSetOperation
    DenseToSparseBatchDataset DenseToSparseSetOperation DepthToSpace DepthwiseConv2dNative
    DepthwiseConv2dNativeBackpropFilter DepthwiseConv2dNativeBackpropInput Dequantize
    DeserializeIterator DeserializeManySparse DeserializeSparse DestroyResourceOp
    DestroyTemporaryVariable DeviceIndex Diag DiagPart Digamma Dilation2D Dilation2DBackpropFilter
    Dilation2DBackpropInput DirectedInterleaveDataset DisableCopyOnRead DistributedSave Div
    DivNoNan DrawBoundingBoxes DrawBoundingBoxesV2 Dropout DropoutGrad DummyIterationCounter
    DummyMemoryCache DummySeedGenerator DynamicEnqueueTPUEmbeddingArbitraryTensorBatch
    DynamicEnqueueTPUEmbeddingRaggedTensorBatch DynamicPartition DynamicStitch EagerPyFunc
    EditDistance Eig Einsum Elu EluGrad Empty EmptyTensorList EmptyTensorMap EncodeBase64
    EncodeJpeg EncodeJpegVariableQuality EncodePng EncodeProto EncodeWav
    EnqueueTPUEmbeddingArbitraryTensorBatch EnqueueTPUEmbeddingIntegerBatch
    EnqueueTPUEmbeddingRaggedTensorBatch EnqueueTPUEmbeddingSparseBatch
    EnqueueTPUEmbeddingSparseTensorBatch EnsureShape Enter Equal Erf Erfc Erfinv EuclideanNorm Exit
    Exp ExpandDims ExperimentalAssertNextDataset ExperimentalAutoShardDataset
    ExperimentalBytesProducedStatsDataset ExperimentalCSVDataset ExperimentalChooseFastestDataset
    ExperimentalDatasetCardinality ExperimentalDatasetToTFRecord
    ExperimentalDenseToSparseBatchDataset ExperimentalDirectedInterleaveDataset
    ExperimentalGroupByReducerDataset ExperimentalGroupByWindowDataset
    ExperimentalIgnoreErrorsDataset ExperimentalIteratorGetDevice ExperimentalLMDBDataset
    ExperimentalLatencyStatsDataset ExperimentalMapAndBatchDataset ExperimentalMapDataset
    ExperimentalMatchingFilesDataset ExperimentalMaxIntraOpParallelismDataset
    ExperimentalNonSerializableDataset ExperimentalParallelInterleaveDataset
    ExperimentalParseExampleDataset ExperimentalPrivateThreadPoolDataset ExperimentalRandomDataset
    ExperimentalRebatchDataset ExperimentalScanDataset ExperimentalSetStatsAggregatorDataset
    ExperimentalSleepDataset ExperimentalSlidingWindowDataset ExperimentalSqlDataset
    ExperimentalStatsAggregatorHandle ExperimentalStatsAggregatorSummary
    ExperimentalTakeWhileDataset ExperimentalThreadPoolDataset ExperimentalThreadPoolHandle
    ExperimentalUnbatchDataset ExperimentalUniqueDataset Expint Expm1 ExtractGlimpse
    ExtractGlimpseV2 ExtractImagePatches ExtractJpegShape ExtractVolumePatches FFT FFT2D FFT3D
    FFTND FIFOQueue FIFOQueueV2 Fact FakeParam FakeQuantWithMinMaxArgs
    FakeQuantWithMinMaxArgsGradient FakeQuantWithMinMaxVars FakeQuantWithMinMaxVarsGradient
    FakeQuantWithMinMaxVarsPerChannel FakeQuantWithMinMaxVarsPerChannelGradient FakeQueue
    FileSystemSetConfiguration Fill FilterByLastComponentDataset FilterDataset FinalizeDataset
    Fingerprint FixedLengthRecordDataset FixedLengthRecordDatasetV2 FixedLengthRecordReader
    FixedLengthRecordReaderV2 FixedUnigramCandidateSampler FlatMapDataset Floor FloorDiv FloorMod
    FlushSummaryWriter For FractionalAvgPool FractionalAvgPoolGrad FractionalMaxPool
    FractionalMaxPoolGrad FresnelCos FresnelSin FusedBatchNorm FusedBatchNormGrad
    FusedBatchNormGradV2 FusedBatchNormGradV3 FusedBatchNormV2 FusedBatchNormV3 FusedPadConv2D
    FusedResizeAndPadConv2D GRUBlockCell GRUBlockCellGrad Gather GatherNd GatherV2 Gelu GeluGrad
    GenerateBoundingBoxProposals GenerateVocabRemapping GeneratorDataset GetElementAtIndex
    GetMinibatchSplitsWithPhysicalReplica GetMinibatchesInCsrWithPhysicalReplica GetOptions
    GetSessionHandle GetSessionHandleV2 GetSessionTensor GetStatsFromListOfSparseCoreCooTensors
    GlobalIterId GlobalShuffleDataset Greater GreaterEqual GroupByReducerDataset
    GroupByWindowDataset GuaranteeConst HSVToRGB HashTable HashTableV2 HistogramFixedWidth
    HistogramSummary IFFT IFFT2D IFFT3D IFFTND IRFFT IRFFT2D IRFFT3D IRFFTND Identity IdentityN
    IdentityReader IdentityReaderV2 If Igamma IgammaGradA Igammac IgnoreErrorsDataset Imag
    ImageProjectiveTransformV2 ImageProjectiveTransformV3 ImageSummary ImmutableConst ImportEvent
    InTopK InTopKV2 IndexFlatMapDataset InfeedDequeue InfeedDequeueTuple InfeedEnqueue
    InfeedEnqueuePrelinearizedBuffer InfeedEnqueueTuple InitializeTable InitializeTableFromDataset
    InitializeTableFromTextFile InitializeTableFromTextFileV2 InitializeTableV2 InplaceAdd
    InplaceSub InplaceUpdate InterleaveDataset Inv InvGrad Invert InvertPermutation
    IsBoostedTreesEnsembleInitialized IsBoostedTreesQuantileStreamResourceInitialized IsFinite
    IsInf IsNan IsTPUEmbeddingInitialized IsVariableInitialized IsotonicRegression Iterator
    IteratorFromStringHandle IteratorFromStringHandleV2 IteratorGetDevice IteratorGetModelProto
    IteratorGetNext IteratorGetNextAsOptional IteratorGetNextSync IteratorToStringHandle IteratorV2
    KMC2ChainInitialization KmeansPlusPlusInitialization L2Loss LMDBDataset LMDBReader LRN LRNGrad
    LSTMBlockCell LSTMBlockCellGrad LatencyStatsDataset LeakyRelu LeakyReluGrad
    LearnedUnigramCandidateSampler LeftShift LegacyParallelInterleaveDatasetV2 Less LessEqual
    Lgamma LinSpace ListDataset ListDiff ListSnapshotChunksDataset LoadAndRemapMatrix LoadDataset
    LoadTPUEmbeddingADAMParameters LoadTPUEmbeddingAdadeltaParameters
    LoadTPUEmbeddingAdagradMomentumParameters LoadTPUEmbeddingAdagradParameters
    LoadTPUEmbeddingCenteredRMSPropParameters LoadTPUEmbeddingFTRLParameters
    LoadTPUEmbeddingFrequencyEstimatorParameters LoadTPUEmbeddingMDLAdagradLightParameters
    LoadTPUEmbeddingMomentumParameters LoadTPUEmbeddingProximalAdagradParameters
    LoadTPUEmbeddingProximalYogiParameters LoadTPUEmbeddingRMSPropParameters
    LoadTPUEmbeddingStochasticGradientDescentParameters Log Log1p LogMatrixDeterminant LogSoftmax
    LogUniformCandidateSampler LogicalAnd LogicalNot LogicalOr LookupTableExport
    LookupTableExportV2 LookupTableFind LookupTableFindV2 LookupTableImport LookupTableImportV2
    LookupTableInsert LookupTableInsertV2 LookupTableRemoveV2 LookupTableSize LookupTableSizeV2
    LoopCond LowerBound Lu MakeIterator MapAndBatchDataset MapClear MapDataset MapDefun
    MapIncompleteSize MapPeek MapSize MapStage MapUnstage MapUnstageNoKey MatMul MatchingFiles
    MatchingFilesDataset MatrixBandPart MatrixDeterminant MatrixDiag MatrixDiagPart
    MatrixDiagPartV2 MatrixDiagPartV3 MatrixDiagV2 MatrixDiagV3 MatrixExponential MatrixInverse
    MatrixLogarithm MatrixSetDiag MatrixSetDiagV2 MatrixSetDiagV3 MatrixSolve MatrixSolveLs
    MatrixSquareRoot MatrixTriangularSolve Max MaxIntraOpParallelismDataset MaxPool MaxPool3D
    MaxPool3DGrad MaxPool3DGradGrad MaxPoolGrad MaxPoolGradGrad MaxPoolGradGradV2
    MaxPoolGradGradWithArgmax MaxPoolGradV2 MaxPoolGradWithArgmax MaxPoolV2 MaxPoolWithArgmax
    Maximum Mean Merge MergeSummary MergeV2Checkpoints Mfcc Min Minimum MirrorPad MirrorPadGrad Mod
    ModelDataset Mul MulNoNan MultiDeviceIterator MultiDeviceIteratorFromStringHandle
    MultiDeviceIteratorGetNextFromShard MultiDeviceIteratorInit MultiDeviceIteratorToStringHandle
    Multinomial MutableDenseHashTable MutableDenseHashTableV2 MutableHashTable
    MutableHashTableOfTensors MutableHashTableOfTensorsV2 MutableHashTableV2 MutexLock MutexV2
    NcclAllReduce NcclBroadcast NcclReduce Ndtri NearestNeighbors Neg NextAfter NextIteration NoOp
    NonDeterministicInts NonMaxSuppression NonMaxSuppressionV2 NonMaxSuppressionV3
    NonMaxSuppressionV4 NonMaxSuppressionV5 NonMaxSuppressionWithOverlaps NonSerializableDataset
    NotEqual NthElement OneHot OneShotIterator OnesLike OptimizeDataset OptimizeDatasetV2
    OptionalFromValue OptionalGetValue OptionalHasValue OptionalNone OptionsDataset OrderedMapClear
    OrderedMapIncompleteSize OrderedMapPeek OrderedMapSize OrderedMapStage OrderedMapUnstage
    OrderedMapUnstageNoKey OutfeedDequeue OutfeedDequeueTuple OutfeedDequeueTupleV2
    OutfeedDequeueV2 OutfeedEnqueue OutfeedEnqueueTuple Pack Pad PadV2 PaddedBatchDataset
    PaddedBatchDatasetV2 PaddingFIFOQueue PaddingFIFOQueueV2 ParallelBatchDataset ParallelConcat
    ParallelDynamicStitch ParallelFilterDataset ParallelInterleaveDataset
    ParallelInterleaveDatasetV2 ParallelInterleaveDatasetV3 ParallelInterleaveDatasetV4
    ParallelMapDataset ParallelMapDatasetV2 ParameterizedTruncatedNormal ParseExample
    ParseExampleDataset ParseExampleDatasetV2 ParseExampleV2 ParseSequenceExample
    ParseSequenceExampleV2 ParseSingleExample ParseSingleSequenceExample ParseTensor
    PartitionedCall Placeholder PlaceholderV2 PlaceholderWithDefault Polygamma PopulationCount Pow
    PrefetchDataset Prelinearize PrelinearizeTuple PreventGradient Print PrintV2 PriorityQueue
    PriorityQueueV2 PrivateThreadPoolDataset Prod PyFunc PyFuncStateless Qr QuantizeAndDequantize
    QuantizeAndDequantizeV2 QuantizeAndDequantizeV3 QuantizeAndDequantizeV4
    QuantizeAndDequantizeV4Grad QuantizeDownAndShrinkRange QuantizeV2 QuantizedAdd QuantizedAvgPool
    QuantizedBatchNormWithGlobalNormalization QuantizedBiasAdd QuantizedConcat QuantizedConv2D
    QuantizedConv2DAndRelu QuantizedConv2DAndReluAndRequantize QuantizedConv2DAndRequantize
    QuantizedConv2DPerChannel QuantizedConv2DWithBias QuantizedConv2DWithBiasAndRelu
    QuantizedConv2DWithBiasAndReluAndRequantize QuantizedConv2DWithBiasAndRequantize
    QuantizedConv2DWithBiasSignedSumAndReluAndRequantize QuantizedConv2DWithBiasSumAndRelu
    QuantizedConv2DWithBiasSumAndReluAndRequantize QuantizedDepthwiseConv2D
    QuantizedDepthwiseConv2DWithBias QuantizedDepthwiseConv2DWithBiasAndRelu
    QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize QuantizedInstanceNorm QuantizedMatMul
    QuantizedMatMulWithBias QuantizedMatMulWithBiasAndDequantize QuantizedMatMulWithBiasAndRelu
    QuantizedMatMulWithBiasAndReluAndRequantize QuantizedMatMulWithBiasAndRequantize
    QuantizedMaxPool QuantizedMul QuantizedRelu QuantizedRelu6 QuantizedReluX QuantizedReshape
    QuantizedResizeBilinear QueueClose QueueCloseV2 QueueDequeue QueueDequeueMany
    QueueDequeueManyV2 QueueDequeueUpTo QueueDequeueUpToV2 QueueDequeueV2 QueueEnqueue
    QueueEnqueueMany QueueEnqueueManyV2 QueueEnqueueV2 QueueIsClosed QueueIsClosedV2 QueueSize
    QueueSizeV2 RFFT RFFT2D RFFT3D RFFTND RGBToHSV RaggedBincount RaggedCountSparseOutput
    RaggedCross RaggedFillEmptyRows RaggedFillEmptyRowsGrad RaggedGather RaggedRange
    RaggedTensorFromVariant RaggedTensorToSparse RaggedTensorToTensor RaggedTensorToVariant
    RaggedTensorToVariantGradient RandomCrop RandomDataset RandomDatasetV2 RandomGamma
    RandomGammaGrad RandomIndexShuffle RandomPoisson RandomPoissonV2 RandomShuffle
    RandomShuffleQueue RandomShuffleQueueV2 RandomStandardNormal RandomUniform RandomUniformInt
    Range RangeDataset Rank ReadFile ReadVariableOp ReadVariableXlaSplitND ReaderNumRecordsProduced
    ReaderNumRecordsProducedV2 ReaderNumWorkUnitsCompleted ReaderNumWorkUnitsCompletedV2 ReaderRead
    ReaderReadUpTo ReaderReadUpToV2 ReaderReadV2 ReaderReset ReaderResetV2 ReaderRestoreState
    ReaderRestoreStateV2 ReaderSerializeState ReaderSerializeStateV2 Real RealDiv RebatchDataset
    RebatchDatasetV2 Reciprocal ReciprocalGrad RecordInput Recv RecvTPUEmbeddingActivations
    ReduceDataset ReduceJoin RefEnter RefExit RefIdentity RefMerge RefNextIteration RefSelect
    RefSwitch RegexFullMatch RegexReplace RegisterDataset RegisterDatasetV2 Relu Relu6 Relu6Grad
    ReluGrad RemoteCall RepeatDataset RequantizationRange RequantizationRangePerChannel Requantize
    RequantizePerChannel Reshape ResizeArea ResizeBicubic ResizeBicubicGrad ResizeBilinear
    ResizeBilinearGrad ResizeNearestNeighbor ResizeNearestNeighborGrad
    ResourceAccumulatorApplyGradient ResourceAccumulatorNumAccumulated
    ResourceAccumulatorSetGlobalStep ResourceAccumulatorTakeGradient ResourceApplyAdaMax
    ResourceApplyAdadelta ResourceApplyAdagrad ResourceApplyAdagradDA ResourceApplyAdagradV2
    ResourceApplyAdam ResourceApplyAdamWithAmsgrad ResourceApplyAddSign
    ResourceApplyCenteredRMSProp ResourceApplyFtrl ResourceApplyFtrlV2 ResourceApplyGradientDescent
    ResourceApplyKerasMomentum ResourceApplyMomentum ResourceApplyPowerSign
    ResourceApplyProximalAdagrad ResourceApplyProximalGradientDescent ResourceApplyRMSProp
    ResourceConditionalAccumulator ResourceCountUpTo ResourceGather ResourceGatherNd
    ResourceScatterAdd ResourceScatterDiv ResourceScatterMax ResourceScatterMin ResourceScatterMul
    ResourceScatterNdAdd ResourceScatterNdMax ResourceScatterNdMin ResourceScatterNdSub
    ResourceScatterNdUpdate ResourceScatterSub ResourceScatterUpdate ResourceSparseApplyAdadelta
    ResourceSparseApplyAdagrad ResourceSparseApplyAdagradDA ResourceSparseApplyAdagradV2
    ResourceSparseApplyCenteredRMSProp ResourceSparseApplyFtrl ResourceSparseApplyFtrlV2
    ResourceSparseApplyKerasMomentum ResourceSparseApplyMomentum ResourceSparseApplyProximalAdagrad
    ResourceSparseApplyProximalGradientDescent ResourceSparseApplyRMSProp
    ResourceStridedSliceAssign Restore RestoreSlice RestoreV2 RetrieveTPUEmbeddingADAMParameters
    RetrieveTPUEmbeddingAdadeltaParameters RetrieveTPUEmbeddingAdagradMomentumParameters
    RetrieveTPUEmbeddingAdagradParameters RetrieveTPUEmbeddingCenteredRMSPropParameters
    RetrieveTPUEmbeddingFTRLParameters RetrieveTPUEmbeddingFrequencyEstimatorParameters
    RetrieveTPUEmbeddingMDLAdagradLightParameters RetrieveTPUEmbeddingMomentumParameters
    RetrieveTPUEmbeddingProximalAdagradParameters RetrieveTPUEmbeddingProximalYogiParameters
    RetrieveTPUEmbeddingRMSPropParameters RetrieveTPUEmbeddingStochasticGradientDescentParameters
    Reverse ReverseSequence ReverseV2 RewriteDataset RightShift Rint RngReadAndSkip RngSkip Roll
    Round Rsqrt RsqrtGrad SampleDistortedBoundingBox SampleDistortedBoundingBoxV2 SamplingDataset
    Save SaveDataset SaveDatasetV2 SaveSlices SaveV2 ScalarSummary ScaleAndTranslate
    ScaleAndTranslateGrad ScanDataset ScatterAdd ScatterDiv ScatterMax ScatterMin ScatterMul
    ScatterNd ScatterNdAdd ScatterNdMax ScatterNdMin ScatterNdNonAliasingAdd ScatterNdSub
    ScatterNdUpdate ScatterSub ScatterUpdate SdcaFprint SdcaOptimizer SdcaOptimizerV2 SdcaShrinkL1
    SegmentMax SegmentMaxV2 SegmentMean SegmentMin SegmentMinV2 SegmentProd SegmentProdV2
    SegmentSum SegmentSumV2 Select SelectV2 SelfAdjointEig SelfAdjointEigV2 Selu SeluGrad Send
    SendTPUEmbeddingGradients SerializeIterator SerializeManySparse SerializeSparse SerializeTensor
    SetSize SetStatsAggregatorDataset Shape ShapeN ShardDataset ShardedFilename ShardedFilespec
    ShuffleAndRepeatDataset ShuffleAndRepeatDatasetV2 ShuffleDataset ShuffleDatasetV2
    ShuffleDatasetV3 ShutdownDistributedTPU Sigmoid SigmoidGrad Sign Sin Sinh Size SkipDataset
    SleepDataset Slice SlidingWindowDataset Snapshot SnapshotChunkDataset SnapshotDataset
    SnapshotDatasetReader SnapshotDatasetV2 SnapshotNestedDatasetReader SobolSample Softmax
    SoftmaxCrossEntropyWithLogits Softplus SoftplusGrad Softsign SoftsignGrad
    SortListOfSparseCoreCooTensors SpaceToBatch SpaceToBatchND SpaceToDepth
    SparseAccumulatorApplyGradient SparseAccumulatorTakeGradient SparseAdd SparseAddGrad
    SparseApplyAdadelta SparseApplyAdagrad SparseApplyAdagradDA SparseApplyAdagradV2
    SparseApplyCenteredRMSProp SparseApplyFtrl SparseApplyFtrlV2 SparseApplyMomentum
    SparseApplyProximalAdagrad SparseApplyProximalGradientDescent SparseApplyRMSProp SparseBincount
    SparseConcat SparseConditionalAccumulator SparseCountSparseOutput SparseCross SparseCrossHashed
    SparseCrossV2 SparseDenseCwiseAdd SparseDenseCwiseDiv SparseDenseCwiseMul SparseFillEmptyRows
    SparseFillEmptyRowsGrad SparseMatMul SparseMatrixAdd SparseMatrixMatMul SparseMatrixMul
    SparseMatrixNNZ SparseMatrixOrderingAMD SparseMatrixSoftmax SparseMatrixSoftmaxGrad
    SparseMatrixSparseCholesky SparseMatrixSparseMatMul SparseMatrixTranspose SparseMatrixZeros
    SparseReduceMax SparseReduceMaxSparse SparseReduceSum SparseReduceSumSparse SparseReorder
    SparseReshape SparseSegmentMean SparseSegmentMeanGrad SparseSegmentMeanGradV2
    SparseSegmentMeanWithNumSegments SparseSegmentSqrtN SparseSegmentSqrtNGrad
    SparseSegmentSqrtNGradV2 SparseSegmentSqrtNWithNumSegments SparseSegmentSum
    SparseSegmentSumGrad SparseSegmentSumGradV2 SparseSegmentSumWithNumSegments SparseSlice
    SparseSliceGrad SparseSoftmax SparseSoftmaxCrossEntropyWithLogits SparseSparseMaximum
    SparseSparseMinimum SparseSplit SparseTensorDenseAdd SparseTensorDenseMatMul
    SparseTensorSliceDataset SparseTensorToCSRSparseMatrix SparseToDense SparseToSparseSetOperation
    Spence Split SplitV SqlDataset Sqrt SqrtGrad Square SquaredDifference Squeeze Stack StackClose
    StackCloseV2 StackPop StackPopV2 StackPush StackPushV2 StackV2 Stage StageClear StagePeek
    StageSize StatefulPartitionedCall StatefulRandomBinomial StatefulStandardNormal
    StatefulStandardNormalV2 StatefulTruncatedNormal StatefulUniform StatefulUniformFullInt
    StatefulUniformInt StatelessCase StatelessIf StatelessMultinomial
    StatelessParameterizedTruncatedNormal StatelessRandomBinomial StatelessRandomGammaV2
    StatelessRandomGammaV3 StatelessRandomGetAlg StatelessRandomGetKeyCounter
    StatelessRandomGetKeyCounterAlg StatelessRandomNormal StatelessRandomNormalV2
    StatelessRandomPoisson StatelessRandomUniform StatelessRandomUniformFullInt
    StatelessRandomUniformFullIntV2 StatelessRandomUniformInt StatelessRandomUniformIntV2
    StatelessRandomUniformV2 StatelessSampleDistortedBoundingBox StatelessShuffle
    StatelessTruncatedNormal StatelessTruncatedNormalV2 StatelessWhile StaticRegexFullMatch
    StaticRegexReplace StatsAggregatorHandle StatsAggregatorHandleV2
    StatsAggregatorSetSummaryWriter StatsAggregatorSummary StopGradient
    StoreMinibatchStatisticsInFdo StridedSlice StridedSliceAssign StridedSliceGrad StringFormat
    StringJoin StringLength StringLower StringNGrams StringSplit StringSplitV2 StringStrip
    StringToHashBucket StringToHashBucketFast StringToHashBucketStrong StringToNumber StringUpper
    Sub Substr Sum SummaryWriter Svd Switch SymbolicGradient SyncDevice TFRecordDataset
    TFRecordDatasetV2 TFRecordReader TFRecordReaderV2 TPUAnnotateTensorsWithDynamicShape
    TPUCompilationResult TPUCopyWithDynamicShape TPUDummyInput TPUEmbeddingActivations
    TPUOrdinalSelector TPUPartitionedCall TPUPartitionedInput TPUPartitionedInputV2
    TPUPartitionedOutput TPUPartitionedOutputV2 TPUReplicateMetadata TPUReplicatedInput
    TPUReplicatedOutput TakeDataset TakeManySparseFromTensorsMap TakeWhileDataset Tan Tanh TanhGrad
    TemporaryVariable TensorArray TensorArrayClose TensorArrayCloseV2 TensorArrayCloseV3
    TensorArrayConcat TensorArrayConcatV2 TensorArrayConcatV3 TensorArrayGather TensorArrayGatherV2
    TensorArrayGatherV3 TensorArrayGrad TensorArrayGradV2 TensorArrayGradV3
    TensorArrayGradWithShape TensorArrayPack TensorArrayRead TensorArrayReadV2 TensorArrayReadV3
    TensorArrayScatter TensorArrayScatterV2 TensorArrayScatterV3 TensorArraySize TensorArraySizeV2
    TensorArraySizeV3 TensorArraySplit TensorArraySplitV2 TensorArraySplitV3 TensorArrayUnpack
    TensorArrayV2 TensorArrayV3 TensorArrayWrite TensorArrayWriteV2 TensorArrayWriteV3
    TensorDataset TensorListConcat TensorListConcatLists TensorListConcatV2 TensorListElementShape
    TensorListFromTensor TensorListGather TensorListGetItem TensorListLength TensorListPopBack
    TensorListPushBack TensorListPushBackBatch TensorListReserve TensorListResize TensorListScatter
    TensorListScatterIntoExistingList TensorListScatterV2 TensorListSetItem TensorListSplit
    TensorListStack TensorMapErase TensorMapHasKey TensorMapInsert TensorMapLookup TensorMapSize
    TensorMapStackKeys TensorScatterAdd TensorScatterMax TensorScatterMin TensorScatterSub
    TensorScatterUpdate TensorSliceDataset TensorStridedSliceUpdate TensorSummary TensorSummaryV2
    TextLineDataset TextLineReader TextLineReaderV2 ThreadPoolDataset ThreadPoolHandle
    ThreadUnsafeUnigramCandidateSampler Tile TileGrad Timestamp ToBool TopK TopKV2 Transpose
    TridiagonalMatMul TridiagonalSolve TruncateDiv TruncateMod TruncatedNormal Unbatch
    UnbatchDataset UnbatchGrad UncompressElement UnicodeDecode UnicodeDecodeWithOffsets
    UnicodeEncode UnicodeScript UnicodeTranscode UniformCandidateSampler UniformDequantize
    UniformQuantize UniformQuantizedAdd UniformQuantizedClipByValue UniformQuantizedConvolution
    UniformQuantizedConvolutionHybrid UniformQuantizedDot UniformQuantizedDotHybrid
    UniformRequantize Unique UniqueDataset UniqueV2 UniqueWithCounts UniqueWithCountsV2 Unpack
    UnravelIndex UnsortedSegmentJoin UnsortedSegmentMax UnsortedSegmentMin UnsortedSegmentProd
    UnsortedSegmentSum Unstage UnwrapDatasetVariant UpperBound VarHandleOp VarIsInitializedOp
    Variable VariableShape VariableV2 WeightedFlatMapDataset Where While WholeFileReader
    WholeFileReaderV2 WindowDataset WindowOp WorkerHeartbeat WrapDatasetVariant WriteAudioSummary
    WriteFile WriteGraphSummary WriteHistogramSummary WriteImageSummary WriteRawProtoSummary
    WriteScalarSummary WriteSummary Xdivy XlaConcatND XlaSparseCoreAdagrad
    XlaSparseCoreAdagradMomentum XlaSparseCoreAdam XlaSparseCoreFtrl XlaSparseCoreSgd
    XlaSparseDenseMatmul XlaSplitND Xlog1py Xlogy ZerosLike Zeta ZipDataset
"""
CORE_OPS = frozenset(_CORE_OPS_TEXT.split())


# -- protobuf wire format ----------------------------------------------------------------------


class _ProtoError(Exception):
    """The bytes are not the protobuf message they claim to be."""


def _varint(buf: Any, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise _ProtoError(f"truncated varint at byte {pos}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _ProtoError(f"varint longer than 10 bytes at byte {pos}")


def _fields(buf: Any, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field, wire type, a, b) for each field in [start, end): varints give (value, 0),
    length-delimited and fixed-size fields their byte span."""
    pos = start
    while pos < end:
        at = pos
        key = buf[pos]
        if key < 0x80:  # one-byte keys and lengths are the common case: skip the general decoder
            pos += 1
        else:
            key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _ProtoError(f"field number 0 at byte {at}")
        if wire == 2:
            if pos < end and buf[pos] < 0x80:
                length = buf[pos]
                pos += 1
            else:
                length, pos = _varint(buf, pos, end)
            if length > end - pos:
                raise _ProtoError(
                    f"field {number} at byte {at} runs {length} bytes past its message"
                )
            yield number, wire, pos, pos + length
            pos += length
        elif wire == 0:
            value, pos = _varint(buf, pos, end)
            yield number, wire, value, 0
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if width > end - pos:
                raise _ProtoError(f"truncated fixed-size field {number} at byte {at}")
            yield number, wire, pos, pos + width
            pos += width
        else:
            raise _ProtoError(f"unsupported wire type {wire} for field {number} at byte {at}")


def _peek(head: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Like `_fields`, over a prefix of the file: stops quietly where the visible bytes end."""
    visible = min(end, len(head))
    pos = start
    while pos < end and pos < visible:
        try:
            key, after_key = _varint(head, pos, visible)
        except _ProtoError:
            if visible < end:
                return
            raise
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _ProtoError("field number 0")
        if wire == 0:
            try:
                value, pos = _varint(head, after_key, visible)
            except _ProtoError:
                if visible < end:
                    return
                raise
            yield number, wire, value, 0
        elif wire == 2:
            try:
                length, pos = _varint(head, after_key, visible)
            except _ProtoError:
                if visible < end:
                    return
                raise
            if length > end - pos:
                raise _ProtoError("length past the enclosing message")
            yield number, wire, pos, pos + length
            pos += length
        elif wire in (1, 5):
            pos = after_key + (8 if wire == 1 else 4)
            if pos > end:
                raise _ProtoError("fixed-size field past the enclosing message")
            yield number, wire, after_key, pos
        else:
            raise _ProtoError(f"wire type {wire}")


def _text(buf: Any, start: int, end: int, limit: int = 4096) -> str:
    return bytes(buf[start : min(end, start + limit)]).decode("utf-8", "replace")


# -- sniffing ---------------------------------------------------------------------------------

GRAPH_FIELDS = {1: 2, 2: 2, 3: 0, 4: 2, 5: 2}
NODE_FIELDS = {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 2}
META_INFO_FIELDS = {1: 2, 2: 2, 3: 2, 4: 2, 5: 2, 6: 2, 7: 0, 8: 2}
FINGERPRINT_FIELDS = {1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 2}
KERAS_OBJECT_FIELDS = {2: 0, 3: 2, 4: 2, 5: 2, 6: 2}


def probe(head: bytes, size: int) -> str | None:
    """Which TensorFlow protobuf the bytes are, from their field structure (None: none).

    (The registry only asks when the first key could be field 1 or 2; see `formats.Deferred`.)
    """
    for kind, test in (
        ("fingerprint", _probe_fingerprint),
        ("saved_model", _probe_saved_model),
        ("keras_metadata", _probe_keras_metadata),
        ("graph_def", _probe_graph_def),
    ):
        try:
            if test(head, size):
                return kind
        except _ProtoError:
            continue
    return None


def _probe_fingerprint(head: bytes, size: int) -> bool:
    if size > 4096 or len(head) < size or not head.startswith(b"\x08"):
        return False
    numbers = []
    for number, wire, a, b in _fields(head, 0, size):
        if FINGERPRINT_FIELDS.get(number) != wire:
            return False
        if number == 6:
            for inner, inner_wire, _, _ in _fields(head, a, b):
                if inner not in (1, 2, 3) or inner_wire != 0:
                    return False
        numbers.append(number)
    return 1 in numbers and len(numbers) == len(set(numbers))


def _probe_saved_model(head: bytes, size: int) -> bool:
    for index, (number, wire, a, b) in enumerate(_peek(head, 0, size)):
        if number == 1 and wire == 0 and index == 0:
            continue
        if number != 2 or wire != 2:
            return False
        return _probe_meta_graph(head, a, b)
    return False


def _probe_meta_graph(head: bytes, start: int, end: int) -> bool:
    evidence = False
    for number, wire, a, b in _peek(head, start, end):
        if not 1 <= number <= 7 or wire != 2:
            return False
        if number == 1:
            found = _probe_meta_info(head, a, b)
        elif number == 2:
            found = _probe_graph(head, a, b)
        else:
            found = None
        if found is False:
            return False
        evidence = evidence or bool(found)
    return evidence


def _probe_meta_info(head: bytes, start: int, end: int) -> bool | None:
    evidence: bool | None = None
    for number, wire, a, b in _peek(head, start, end):
        if META_INFO_FIELDS.get(number) != wire:
            return False
        if number == 4 and b <= len(head) and OP_NAME.match(_text(head, a, b)):
            evidence = True  # a tag such as "serve"
        elif number == 2:
            for op_number, op_wire, oa, ob in _peek(head, a, b):
                if op_number != 1 or op_wire != 2:
                    return False
                for def_number, def_wire, da, db in _peek(head, oa, ob):
                    if def_number == 1 and def_wire == 2 and db <= len(head):
                        if not OP_NAME.match(_text(head, da, db)):
                            return False
                        evidence = True
                    break
                break
    return evidence


def _probe_graph(head: bytes, start: int, end: int) -> bool | None:
    for number, wire, a, b in _peek(head, start, end):
        if GRAPH_FIELDS.get(number) != wire:
            return False
        if number == 1:
            return _probe_node(head, a, b)
    return None


def _probe_node(head: bytes, start: int, end: int) -> bool | None:
    for number, wire, a, b in _peek(head, start, end):
        if NODE_FIELDS.get(number) != wire:
            return False
        if number == 2:
            if b > len(head):
                return None
            return bool(OP_NAME.match(_text(head, a, b)))
    return None


def _probe_graph_def(head: bytes, size: int) -> bool:
    found = False
    for index, (number, wire, a, b) in enumerate(_peek(head, 0, size)):
        if GRAPH_FIELDS.get(number) != wire or (index == 0 and number != 1):
            return False
        if number == 1 and not found:
            node = _probe_node(head, a, b)
            if node is False:
                return False
            found = bool(node)
    return found


def _probe_keras_metadata(head: bytes, size: int) -> bool:
    for number, wire, a, b in _peek(head, 0, size):
        if number != 1 or wire != 2:
            return False
        for inner, inner_wire, ia, ib in _peek(head, a, b):
            if KERAS_OBJECT_FIELDS.get(inner) != inner_wire:
                return False
            if inner == 4 and ib <= len(head):
                return _text(head, ia, ib).startswith("_tf_keras")
        return False
    return False


# -- scanning ---------------------------------------------------------------------------------


class SavedModelScanner:
    """SavedModel, GraphDef, Keras metadata and fingerprint protobufs, recognised by structure."""

    name = "tensorflow"

    def sniff(self, blob: Blob) -> bool:
        return probe(blob.head, blob.size) is not None

    def scan(self, blob: Blob, ctx: ScanContext) -> None:
        kind = probe(blob.head, blob.size)
        if kind is None or kind == "fingerprint":
            return  # a fingerprint holds only hashes
        with _mapped(blob) as buf:
            check = _Check(blob, ctx, buf)
            try:
                if kind == "saved_model":
                    check.saved_model()
                elif kind == "graph_def":
                    check.graph_def(0, blob.size, "graph")
                else:
                    check.keras_metadata()
            except _ProtoError as exc:
                raise ScanError(f"malformed TensorFlow {kind} protobuf: {exc}") from exc
            check.report()


@contextmanager
def _mapped(blob: Blob) -> Iterator[Any]:
    """The blob's bytes, memory-mapped when it is a real file (SavedModels can be gigabytes)."""
    with blob.open() as f:
        try:
            fileno = f.fileno()
        except (OSError, AttributeError, ValueError):
            fileno = -1
        if fileno >= 0 and blob.size > 0:
            with mmap.mmap(fileno, 0, access=mmap.ACCESS_READ) as mapped:
                if len(mapped) != blob.size:
                    raise ScanError("file changed size while it was scanned")
                yield mapped
                return
        if blob.size > MAX_IN_MEMORY:
            raise ScanError(f"{blob.size} bytes is over the protobuf size limit")
        yield f.read()


@dataclass(slots=True)
class _Node:
    name: str
    op: str
    inputs: list[tuple[int, int]]  # byte spans, decoded only when a path is resolved
    attrs: dict[str, tuple[int, int]]
    offset: int


@dataclass(slots=True)
class _Hit:
    rule: Rule
    why: str
    nodes: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    offset: int = 0
    count: int = 0


class _Check:
    def __init__(self, blob: Blob, ctx: ScanContext, buf: Any) -> None:
        self.blob = blob
        self.ctx = ctx
        self.buf = buf
        self.node_count = 0
        self.function_names: set[str] = set()
        self.hits: dict[tuple[str, str], _Hit] = {}
        self.custom: dict[str, _Hit] = {}
        self.keras_seen: set[tuple[str, ...]] = set()

    # -- structure ---------------------------------------------------------------------------
    def saved_model(self) -> None:
        for number, wire, a, b in _fields(self.buf, 0, self.blob.size):
            if number == 2 and wire == 2:
                self.meta_graph(a, b)

    def meta_graph(self, start: int, end: int) -> None:
        graphs: list[tuple[int, int]] = []
        for number, wire, a, b in _fields(self.buf, start, end):
            if wire != 2:
                continue
            if number == 2:
                graphs.append((a, b))
            elif number == 6:
                self.asset(a, b)
            elif number == 7:
                self.object_graph(a, b)
        for a, b in graphs:
            self.graph_def(a, b, "graph")

    def graph_def(self, start: int, end: int, scope: str) -> None:
        nodes: list[_Node] = []
        functions: list[tuple[str, list[_Node]]] = []
        for number, wire, a, b in _fields(self.buf, start, end):
            if number == 1 and wire == 2:
                nodes.append(self.node(a, b))
            elif number == 2 and wire == 2:
                functions.extend(self.library(a, b))
        self.function_names.update(name for name, _ in functions)
        self.graph(nodes, scope)
        for name, body in functions:
            self.graph(body, f"function {name}")

    def library(self, start: int, end: int) -> list[tuple[str, list[_Node]]]:
        functions: list[tuple[str, list[_Node]]] = []
        for number, wire, a, b in _fields(self.buf, start, end):
            if number != 1 or wire != 2:
                continue
            if len(functions) >= MAX_FUNCTIONS:
                raise ScanError(f"more than {MAX_FUNCTIONS} functions in the graph library")
            name = ""
            body: list[_Node] = []
            for f_number, f_wire, fa, fb in _fields(self.buf, a, b):
                if f_number == 1 and f_wire == 2:  # signature (OpDef): its name
                    for s_number, s_wire, sa, sb in _fields(self.buf, fa, fb):
                        if s_number == 1 and s_wire == 2:
                            name = _text(self.buf, sa, sb, 1024)
                elif f_number == 3 and f_wire == 2:
                    body.append(self.node(fa, fb))
            functions.append((name, body))
        return functions

    def node(self, start: int, end: int) -> _Node:
        self.node_count += 1
        if self.node_count > MAX_NODES:
            raise ScanError(f"more than {MAX_NODES} graph nodes")
        node = _Node("", "", [], {}, start)
        for number, wire, a, b in _fields(self.buf, start, end):
            if wire != 2:
                continue
            if number == 1:
                node.name = _text(self.buf, a, b, 1024)
            elif number == 2:
                node.op = _text(self.buf, a, b, 1024)
            elif number == 3 and len(node.inputs) < 100_000:
                node.inputs.append((a, b))
            elif number == 5:
                key = ""
                value = (0, 0)
                for e_number, e_wire, ea, eb in _fields(self.buf, a, b):
                    if e_number == 1 and e_wire == 2:
                        key = _text(self.buf, ea, eb, 256)
                    elif e_number == 2 and e_wire == 2:
                        value = (ea, eb)
                node.attrs[key] = value
        return node

    def asset(self, start: int, end: int) -> None:
        for number, wire, a, b in _fields(self.buf, start, end):
            if number == 2 and wire == 2:
                filename = _text(self.buf, a, b)
                problem = _odd_path(filename)
                if problem:
                    self.ctx.emit(
                        TF_ASSET_PATH.finding(
                            self.blob.location.at_offset(a),
                            f"asset file name {filename!r} is {problem}",
                            {"filename": filename, "problem": problem},
                        )
                    )

    def object_graph(self, start: int, end: int) -> None:
        """SavedObjectGraph: Keras (TF 2.0-2.4) stored layer configs as user-object metadata."""
        for number, wire, a, b in _fields(self.buf, start, end):
            if number != 1 or wire != 2:
                continue
            for o_number, o_wire, oa, ob in _fields(self.buf, a, b):
                if o_number != 4 or o_wire != 2:  # SavedUserObject
                    continue
                identifier = ""
                metadata: tuple[int, int] | None = None
                for u_number, u_wire, ua, ub in _fields(self.buf, oa, ob):
                    if u_number == 1 and u_wire == 2:
                        identifier = _text(self.buf, ua, ub, 256)
                    elif u_number == 3 and u_wire == 2:
                        metadata = (ua, ub)
                if metadata is not None:
                    self.keras_config(metadata, f"user object {identifier or '?'}")

    def keras_metadata(self) -> None:
        for number, wire, a, b in _fields(self.buf, 0, self.blob.size):
            if number != 1 or wire != 2:
                continue
            path = ""
            metadata: tuple[int, int] | None = None
            for o_number, o_wire, oa, ob in _fields(self.buf, a, b):
                if o_number == 3 and o_wire == 2:
                    path = _text(self.buf, oa, ob, 1024)
                elif o_number == 5 and o_wire == 2:
                    metadata = (oa, ob)
            if metadata is not None:
                self.keras_config(metadata, f"keras metadata {path or '?'}")

    def keras_config(self, span: tuple[int, int], origin: str) -> None:
        raw = bytes(self.buf[span[0] : span[1]])
        if not raw.lstrip().startswith(b"{"):
            return  # not a Keras object (other trackables carry no JSON)
        config = parse_config_json(raw, origin)
        check_keras_config(config, self.blob.location, self.ctx, origin, self.keras_seen)

    # -- analysis ----------------------------------------------------------------------------
    def graph(self, nodes: list[_Node], scope: str) -> None:
        by_name = {node.name: node for node in nodes}
        for node in nodes:
            op = node.op
            if op in CODE_OPS:
                self.hit(
                    TF_DANGEROUS_OP, op, CODE_OPS[op], node, scope, self.paths(node, by_name, (0,))
                )
            elif op in FILE_OPS:
                why, path_inputs = FILE_OPS[op]
                self.hit(
                    TF_FILE_ACCESS, op, why, node, scope, self.paths(node, by_name, path_inputs)
                )
            elif op in PATH_OPS:
                odd = [p for p in self.paths(node, by_name, PATH_OPS[op]) if _odd_path(p)]
                if odd:
                    self.hit(TF_FILE_ACCESS, op, "uses a literal path outside the model", node,
                             scope, odd)  # fmt: skip
            elif op in DEBUG_OPS:
                urls = self.attr_strings(node, "debug_urls")
                if urls:
                    self.hit(TF_FILE_ACCESS, op, "dumps tensors to debug URLs", node, scope, urls)
            elif op == "PrintV2":
                stream = self.attr_string(node, "output_stream")
                if stream and stream.startswith("file://"):
                    self.hit(
                        TF_FILE_ACCESS, op, "prints tensors into a file", node, scope, [stream]
                    )
            elif op == "ImmutableConst":
                region = self.attr_string(node, "memory_region_name")
                self.hit(TF_FILE_ACCESS, op, "memory-maps a file named in the graph", node, scope,
                         [region] if region else [])  # fmt: skip
            elif not self.is_known(op):
                if SHELL_LIKE.search(op):
                    self.hit(TF_DANGEROUS_OP, op, "is a custom op whose name suggests running "
                             "commands", node, scope, [])  # fmt: skip
                self.custom_op(op, node, scope)

    def is_known(self, op: str) -> bool:
        return (
            op in CORE_OPS
            or op.startswith(("_", "Xla"))
            or op in self.function_names
            or not op  # reported as malformed by TensorFlow itself; nothing runs
        )

    def hit(self, rule: Rule, op: str, why: str, node: _Node, scope: str, paths: list[str]) -> None:
        entry = self.hits.setdefault((rule.rule_id, op), _Hit(rule, why, offset=node.offset))
        entry.count += 1
        if len(entry.nodes) < MAX_LISTED:
            entry.nodes.append(node.name)
        if scope not in entry.scopes and len(entry.scopes) < MAX_LISTED:
            entry.scopes.append(scope)
        for path in paths:
            if path not in entry.paths and len(entry.paths) < MAX_LISTED:
                entry.paths.append(path)

    def custom_op(self, op: str, node: _Node, scope: str) -> None:
        entry = self.custom.setdefault(op, _Hit(TF_CUSTOM_OP, "", offset=node.offset))
        entry.count += 1
        if len(entry.nodes) < MAX_LISTED:
            entry.nodes.append(node.name)
        if scope not in entry.scopes and len(entry.scopes) < MAX_LISTED:
            entry.scopes.append(scope)

    def report(self) -> None:
        for (_, op), hit in sorted(self.hits.items()):
            message = f"{hit.count} {op} node(s) {hit.why} (in {', '.join(hit.scopes[:3])})"
            if hit.paths:
                message += f"; paths: {', '.join(repr(p) for p in hit.paths[:5])}"
            self.ctx.emit(
                hit.rule.finding(
                    self.blob.location.at_offset(hit.offset),
                    message,
                    {
                        "op": op,
                        "count": hit.count,
                        "nodes": hit.nodes,
                        "scopes": hit.scopes,
                        "paths": hit.paths,
                    },
                )
            )
        if self.custom:
            ops = sorted(self.custom)
            first = min(self.custom.values(), key=lambda h: h.offset)
            self.ctx.emit(
                TF_CUSTOM_OP.finding(
                    self.blob.location.at_offset(first.offset),
                    f"{sum(h.count for h in self.custom.values())} node(s) use ops that are not "
                    f"in TensorFlow: {', '.join(ops[:10])}",
                    {
                        "ops": ops[:MAX_LISTED],
                        "nodes": {op: self.custom[op].nodes[:5] for op in ops[:MAX_LISTED]},
                    },
                )
            )

    # -- attribute values --------------------------------------------------------------------
    def attr_fields(self, node: _Node, name: str) -> Iterator[tuple[int, int, int, int]]:
        span = node.attrs.get(name)
        if span is None:
            return iter(())
        return _fields(self.buf, span[0], span[1])

    def attr_string(self, node: _Node, name: str) -> str | None:
        for number, wire, a, b in self.attr_fields(node, name):
            if number == 2 and wire == 2:
                return _text(self.buf, a, b)
        return None

    def attr_strings(self, node: _Node, name: str) -> list[str]:
        out: list[str] = []
        for number, wire, a, b in self.attr_fields(node, name):
            if number == 1 and wire == 2:  # ListValue
                for l_number, l_wire, la, lb in _fields(self.buf, a, b):
                    if l_number == 2 and l_wire == 2 and len(out) < MAX_STRINGS:
                        out.append(_text(self.buf, la, lb))
        return out

    def const_strings(self, node: _Node) -> list[str]:
        """string_val of a Const node's `value` tensor."""
        out: list[str] = []
        for number, wire, a, b in self.attr_fields(node, "value"):
            if number == 8 and wire == 2:  # TensorProto
                for t_number, t_wire, ta, tb in _fields(self.buf, a, b):
                    if t_number == 8 and t_wire == 2 and len(out) < MAX_STRINGS:
                        out.append(_text(self.buf, ta, tb))
        return out

    def paths(self, node: _Node, by_name: dict[str, _Node], indices: tuple[int, ...]) -> list[str]:
        """Literal strings that reach the given inputs through Const and pass-through nodes."""
        found: list[str] = []
        data_inputs = [i for i in self.inputs(node) if not i.startswith("^")]
        pending = [data_inputs[i] for i in indices if i < len(data_inputs)]
        visited = 0
        while pending and visited < MAX_RESOLVE:
            source = by_name.get(pending.pop().split(":", 1)[0])
            visited += 1
            if source is None:
                continue
            if source.op == "Const":
                found.extend(s for s in self.const_strings(source) if s not in found)
            elif source.op in PASS_THROUGH:
                pending.extend(i for i in self.inputs(source) if not i.startswith("^"))
        return found[:MAX_STRINGS]

    def inputs(self, node: _Node) -> list[str]:
        return [_text(self.buf, a, b, 1024) for a, b in node.inputs]


def _odd_path(path: str) -> str | None:
    """Why a literal path leaves the model's folder (None: it does not)."""
    if not path:
        return None
    if _URL.match(path):
        return "a URL"
    if path.startswith(("/", "\\", "~")) or _DRIVE.match(path):
        return "an absolute path"
    if ".." in re.split(r"[\\/]", path):
        return "a path with '..' components"
    return None
