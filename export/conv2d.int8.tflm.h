/* conv2d int8 MNIST classifier for TensorFlow Lite for Microcontrollers (written by mnist-edge).

   Input:  28x28x1 uint8 pixels, MNIST form (bright ink on black, 0..255), scale 0.00392156886, zero point 0.
   Output: 10 int8 logits, scale 0.101039387, zero point 35:
           logit[i] = 0.101039387 * (output[i] - (35)); then score[i] = 1 / (1 + exp(-logit[i])), each digit on its own.
           The digit is the index of the largest output (no need to dequantize for that).
   Arena:  38448 bytes measured with tflite-micro (x86_64, reference kernels);
           MNIST_EDGE_CONV2D_INT8_ARENA_BYTES adds 25% (rounded up to KiB) for 32-bit targets and
           optimized kernels' scratch buffers.
   Operators: QUANTIZE, PAD, CONV_2D, MAX_POOL_2D, RESHAPE, FULLY_CONNECTED, REDUCE_MAX, MAXIMUM, RSQRT, MUL. */
#ifndef MNIST_EDGE_CONV2D_INT8_TFLM_H
#define MNIST_EDGE_CONV2D_INT8_TFLM_H

#define MNIST_EDGE_CONV2D_INT8_ARENA_BYTES 48128
#define MNIST_EDGE_CONV2D_INT8_OPERATOR_COUNT 10
#define MNIST_EDGE_CONV2D_INT8_INPUT_SCALE 0.00392156886f
#define MNIST_EDGE_CONV2D_INT8_INPUT_ZERO_POINT 0
#define MNIST_EDGE_CONV2D_INT8_OUTPUT_SCALE 0.101039387f
#define MNIST_EDGE_CONV2D_INT8_OUTPUT_ZERO_POINT 35

#ifdef __cplusplus
extern "C" {
#endif
extern const unsigned char mnist_edge_conv2d_int8_model[];
extern const unsigned int mnist_edge_conv2d_int8_model_len;
#ifdef __cplusplus
}

/* Register exactly the operators this model uses, e.g.
   tflite::MicroMutableOpResolver<MNIST_EDGE_CONV2D_INT8_OPERATOR_COUNT> resolver;
   mnist_edge_conv2d_int8_register_ops(resolver); */
template <typename Resolver>
inline void mnist_edge_conv2d_int8_register_ops(Resolver& resolver) {
  resolver.AddQuantize();
  resolver.AddPad();
  resolver.AddConv2D();
  resolver.AddMaxPool2D();
  resolver.AddReshape();
  resolver.AddFullyConnected();
  resolver.AddReduceMax();
  resolver.AddMaximum();
  resolver.AddRsqrt();
  resolver.AddMul();
}
#endif

#endif /* MNIST_EDGE_CONV2D_INT8_TFLM_H */
