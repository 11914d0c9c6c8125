// stb_image and stb_image_resize compiled from their headers for fuzz_image, with coverage and
// AddressSanitizer but without UndefinedBehaviorSanitizer: stb has benign undefined behaviour
// (memcpy from a null pointer with a zero length, signed overflow in decoders hcnn does not
// use) that is not ours to fix, while memory errors in it would matter to hcnn's users.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_resize.h>
