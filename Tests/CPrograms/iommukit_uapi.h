/*
 * The iommufd uAPI as the conformance programs use it: command numbers, structures
 * and constants, written for IOMMUKit from the uAPI description in
 * shared/spec/iommufd-uapi.md (it is not the kernel's header). Layouts are checked
 * with static asserts against the sizes the spec gives. A program may instead be built
 * with the system's <linux/iommufd.h>; these names then do not clash, they are ours.
 */
#ifndef IOMMUKIT_UAPI_H
#define IOMMUKIT_UAPI_H

#include <stdint.h>

#define IK_TYPE ';'
#define IK_IO(nr) ((IK_TYPE << 8) | (nr))   /* _IO(';', nr): no size or direction bits */

enum {
	IK_DESTROY = IK_IO(0x80), IK_IOAS_ALLOC = IK_IO(0x81), IK_IOAS_ALLOW_IOVAS = IK_IO(0x82),
	IK_IOAS_COPY = IK_IO(0x83), IK_IOAS_IOVA_RANGES = IK_IO(0x84), IK_IOAS_MAP = IK_IO(0x85),
	IK_IOAS_UNMAP = IK_IO(0x86), IK_OPTION = IK_IO(0x87), IK_VFIO_IOAS = IK_IO(0x88),
	IK_HWPT_ALLOC = IK_IO(0x89), IK_GET_HW_INFO = IK_IO(0x8A), IK_HWPT_SET_DIRTY_TRACKING = IK_IO(0x8B),
	IK_HWPT_GET_DIRTY_BITMAP = IK_IO(0x8C), IK_HWPT_INVALIDATE = IK_IO(0x8D),
	IK_FAULT_QUEUE_ALLOC = IK_IO(0x8E), IK_IOAS_CHANGE_PROCESS = IK_IO(0x92), IK_TEST_CMD = IK_IO(0xA0),
	IK_VFIO_GET_API_VERSION = IK_IO(100), IK_VFIO_CHECK_EXTENSION = IK_IO(101),
};

struct ik_destroy { uint32_t size, id; };
struct ik_ioas_alloc { uint32_t size, flags, out_ioas_id; };
struct ik_iova_range { uint64_t start, last; };
struct ik_ioas_allow_iovas { uint32_t size, ioas_id, num_iovas, reserved; uint64_t allowed_iovas; };
struct ik_ioas_copy { uint32_t size, flags, dst_ioas_id, src_ioas_id; uint64_t length, dst_iova, src_iova; };
struct ik_ioas_iova_ranges {
	uint32_t size, ioas_id, num_iovas, reserved;
	uint64_t allowed_iovas, out_iova_alignment;
};
struct ik_ioas_map { uint32_t size, flags, ioas_id, reserved; uint64_t user_va, length, iova; };
struct ik_ioas_unmap { uint32_t size, ioas_id; uint64_t iova, length; };
struct ik_option { uint32_t size, option_id; uint16_t op, reserved; uint32_t object_id; uint64_t val64; };
struct ik_vfio_ioas { uint32_t size, ioas_id; uint16_t op, reserved; };
struct ik_hwpt_alloc {
	uint32_t size, flags, dev_id, pt_id, out_hwpt_id, reserved, data_type, data_len;
	uint64_t data_uptr;
	uint32_t fault_id, reserved2;
};
struct ik_hw_info {
	uint32_t size, flags, dev_id, data_len;
	uint64_t data_uptr;
	uint32_t out_data_type;
	uint8_t out_max_pasid_log2, reserved[3];
	uint64_t out_capabilities;
};
struct ik_hwpt_set_dirty_tracking { uint32_t size, flags, hwpt_id, reserved; };
struct ik_hwpt_get_dirty_bitmap {
	uint32_t size, hwpt_id, flags, reserved;
	uint64_t iova, length, page_size, data;
};
struct ik_hwpt_invalidate { uint32_t size, hwpt_id; uint64_t data_uptr; uint32_t data_type, entry_len, entry_num, reserved; };
struct ik_fault_alloc { uint32_t size, flags, out_fault_id, out_fault_fd; };
struct ik_ioas_change_process { uint32_t size, reserved; };

/* Fault queue records. */
struct ik_hwpt_pgfault { uint32_t flags, dev_id, pasid, grpid, perm, reserved; uint64_t addr; uint32_t length, cookie; };
struct ik_hwpt_page_response { uint32_t cookie, code; };

/* IOMMU_TEST_CMD (kernels built with CONFIG_IOMMUFD_TEST). */
enum {
	IK_TEST_OP_ADD_RESERVED = 1, IK_TEST_OP_MOCK_DOMAIN = 2, IK_TEST_OP_MD_CHECK_MAP = 3,
	IK_TEST_OP_MD_CHECK_REFS = 4, IK_TEST_OP_CREATE_ACCESS = 5, IK_TEST_OP_DESTROY_ACCESS_PAGES = 6,
	IK_TEST_OP_ACCESS_PAGES = 7, IK_TEST_OP_ACCESS_RW = 8, IK_TEST_OP_SET_TEMP_MEMORY_LIMIT = 9,
	IK_TEST_OP_MOCK_DOMAIN_REPLACE = 10, IK_TEST_OP_TRIGGER_IOPF = 15,
};
struct ik_test_cmd {
	uint32_t size, op, id, reserved;
	union {
		struct { uint64_t start, length; } add_reserved;
		struct { uint32_t out_stdev_id, out_hwpt_id, out_idev_id; } mock_domain;
		struct { uint32_t pt_id; } mock_domain_replace;
		struct { uint64_t iova, length, uptr; } check_map;
		struct { uint64_t length, uptr; uint32_t refs; } check_refs;
		struct { uint32_t out_access_fd, flags; } create_access;
		struct { uint32_t access_pages_id; } destroy_access_pages;
		struct { uint32_t flags, out_access_pages_id; uint64_t iova, length, uptr; } access_pages;
		struct { uint64_t iova, length, uptr; uint32_t flags; } access_rw;
		struct { uint32_t limit; } memory_limit;
		struct { uint32_t dev_id, pasid, grpid, perm; uint64_t addr; } trigger_iopf;
		uint8_t raw[48];
	};
	uint32_t last;
};

#define IK_MAP_FIXED_IOVA 1u
#define IK_MAP_WRITEABLE 2u
#define IK_MAP_READABLE 4u
#define IK_OPTION_RLIMIT_MODE 0u
#define IK_OPTION_HUGE_PAGES 1u
#define IK_OPTION_OP_SET 0
#define IK_OPTION_OP_GET 1
#define IK_VFIO_IOAS_GET 0
#define IK_VFIO_IOAS_SET 1
#define IK_HWPT_FAULT_ID_VALID (1u << 2)
#define IK_ACCESS_RW_WRITE 1u
#define IK_MOCK_APERTURE_START (1ull << 24)

_Static_assert(sizeof(struct ik_ioas_copy) == 40, "iommu_ioas_copy");
_Static_assert(sizeof(struct ik_ioas_iova_ranges) == 32, "iommu_ioas_iova_ranges");
_Static_assert(sizeof(struct ik_ioas_map) == 40, "iommu_ioas_map");
_Static_assert(sizeof(struct ik_option) == 24, "iommu_option");
_Static_assert(sizeof(struct ik_hwpt_alloc) == 48, "iommu_hwpt_alloc");
_Static_assert(sizeof(struct ik_hw_info) == 40, "iommu_hw_info");
_Static_assert(sizeof(struct ik_hwpt_get_dirty_bitmap) == 48, "iommu_hwpt_get_dirty_bitmap");
_Static_assert(sizeof(struct ik_hwpt_invalidate) == 32, "iommu_hwpt_invalidate");
_Static_assert(sizeof(struct ik_hwpt_pgfault) == 40, "iommu_hwpt_pgfault");
_Static_assert(sizeof(struct ik_test_cmd) == 72, "iommu_test_cmd");

#endif
