/* bxCAN1 on PB8/PB9: bit timing, a hardware filter for the node's CRO id, mailboxes, an RX ring. */
#include <errno.h>
#include <string.h>

#include "can-timing.h"
#include "hal-stm32.h"
#include "stm32-regs.h"

#ifndef CF_CAN_GPIO_PORT
#define CF_CAN_GPIO_PORT 1u /* B */
#define CF_CAN_RX_PIN    8u
#define CF_CAN_TX_PIN    9u
#endif

static bool wait_msr(uint32_t mask, uint32_t value)
{
        for (uint32_t i = 0; i < CF_WAIT_LOOPS; i++)
                if ((CAN_MSR & mask) == value)
                        return true;
        return false;
}

static void pins_af9(void)
{
        RCC_AHB1ENR |= 1u << CF_CAN_GPIO_PORT;
        cf_dsb();
        const unsigned pins[2] = {CF_CAN_RX_PIN, CF_CAN_TX_PIN};
        for (unsigned i = 0; i < 2; i++) {
                unsigned p = pins[i];
                GPIO_MODER(CF_CAN_GPIO_PORT) = (GPIO_MODER(CF_CAN_GPIO_PORT) & ~(3u << 2 * p)) | 2u << 2 * p;
                GPIO_OSPEEDR(CF_CAN_GPIO_PORT) |= 3u << 2 * p;
                if (p < 8)
                        GPIO_AFRL(CF_CAN_GPIO_PORT) =
                            (GPIO_AFRL(CF_CAN_GPIO_PORT) & ~(0xFu << 4 * p)) | 9u << 4 * p;
                else
                        GPIO_AFRH(CF_CAN_GPIO_PORT) =
                            (GPIO_AFRH(CF_CAN_GPIO_PORT) & ~(0xFu << 4 * (p - 8))) | 9u << 4 * (p - 8);
        }
}

int cf_stm32_can_start(struct cf_hal *h, uint32_t cro_id, uint32_t bitrate, bool with_irq)
{
        struct cf_can_timing t;
        if (cro_id > 0x7FFu || cf_can_timing_compute(h->apb1_hz, bitrate, &t) < 0)
                return -EINVAL;

        pins_af9();
        RCC_APB1ENR |= RCC_APB1ENR_CAN1;
        cf_dsb();
        CAN_MCR = (CAN_MCR & ~CAN_MCR_SLEEP) | CAN_MCR_INRQ;
        if (!wait_msr(CAN_MSR_INAK, CAN_MSR_INAK)) {
                cf_stm32_can_stop(h);
                return -ETIMEDOUT;
        }
        /* Automatic bus-off recovery; transmit in request order (a CCP reply never overtakes another). */
        CAN_MCR = CAN_MCR_INRQ | CAN_MCR_ABOM | CAN_MCR_TXFP;
        CAN_BTR = cf_can_timing_btr(&t);

        /* Filter bank 0: 32-bit identifier list, both entries our CRO id as a standard data frame. */
        CAN_FMR |= CAN_FMR_FINIT;
        CAN_FA1R &= ~1u;
        CAN_FM1R |= 1u;
        CAN_FS1R |= 1u;
        CAN_FFA1R &= ~1u;
        CAN_FR1(0) = cro_id << 21;
        CAN_FR2(0) = cro_id << 21;
        CAN_FA1R |= 1u;
        /* Filter bank 1: the same mode, for a group transfer's id; active only while joined
         * (cf_stm32_can_group_filter). Set up now so that joining needs no FINIT: bank 0 keeps
         * receiving while bank 1 changes. */
        CAN_FA1R &= ~2u;
        CAN_FM1R |= 2u;
        CAN_FS1R |= 2u;
        CAN_FFA1R &= ~2u;
        h->can_group_on = false;
        CAN_FMR &= ~CAN_FMR_FINIT;

        h->can_cro_id = cro_id;
        h->rx_head = h->rx_tail = 0;
        CAN_MCR &= ~CAN_MCR_INRQ;
        /* Leaving initialisation needs 11 recessive bits: a bus without a transceiver never gets them. */
        if (!wait_msr(CAN_MSR_INAK, 0)) {
                cf_stm32_can_stop(h);
                return -ETIMEDOUT;
        }
        h->can_irq = with_irq;
        h->can_up = true;
        if (with_irq) {
                CAN_IER = CAN_IER_FMPIE0;
                NVIC_ISER(CAN1_RX0_IRQN / 32) = 1u << (CAN1_RX0_IRQN % 32);
        }
        return 0;
}

void cf_stm32_can_group_filter(struct cf_hal *h, bool on, uint32_t id)
{
        if (!h->can_up || id > 0x7FFu || (on == h->can_group_on && (!on || id == h->can_group_id)))
                return;
        /* A deactivated bank may be rewritten outside filter initialisation mode (RM0090 §32.7.4). */
        CAN_FA1R &= ~2u;
        if (on) {
                CAN_FR1(1) = id << 21;
                CAN_FR2(1) = id << 21;
                CAN_FA1R |= 2u;
        }
        h->can_group_on = on;
        h->can_group_id = id;
}

void cf_stm32_can_stop(struct cf_hal *h)
{
        NVIC_ICER(CAN1_RX0_IRQN / 32) = 1u << (CAN1_RX0_IRQN % 32);
        if (RCC_APB1ENR & RCC_APB1ENR_CAN1) {
                RCC_APB1RSTR |= RCC_APB1RSTR_CAN1;
                RCC_APB1RSTR &= ~RCC_APB1RSTR_CAN1;
                RCC_APB1ENR &= ~RCC_APB1ENR_CAN1;
        }
        h->can_up = false;
        h->can_irq = false;
}

void cf_stm32_can_poll(struct cf_hal *h)
{
        if (!h->can_up)
                return;
        for (unsigned guard = 0; guard < 3 && (CAN_RF0R & CAN_RF0R_FMP0); guard++) {
                uint32_t rir = CAN_RI0R, rdtr = CAN_RDT0R;
                uint32_t lo = CAN_RDL0R, hi = CAN_RDH0R;
                CAN_RF0R = CAN_RF0R_RFOM0;
                if (rir & (CAN_RIR_IDE | CAN_RIR_RTR))
                        continue;
                uint8_t head = h->rx_head;
                uint8_t next = (uint8_t) ((head + 1u) % CF_CAN_RX_RING);
                if (next == h->rx_tail) {
                        h->rx_overruns++;
                        continue;
                }
                struct cf_bxcan_frame *f = &h->rx[head];
                f->id = rir >> 21;
                f->dlc = (uint8_t) (rdtr & 0xFu);
                if (f->dlc > 8)
                        f->dlc = 8;
                memcpy(f->data, &lo, 4);
                memcpy(f->data + 4, &hi, 4);
                h->rx_head = next;
        }
        if (CAN_RF0R & CAN_RF0R_FOVR0) {
                h->rx_overruns++;
                CAN_RF0R = CAN_RF0R_FOVR0;
        }
}

void CAN1_RX0_IRQHandler(void);
void CAN1_RX0_IRQHandler(void)
{
        cf_stm32_can_poll(&cf_stm32_hal);
}

bool cf_stm32_can_recv(struct cf_hal *h, struct cf_bxcan_frame *f)
{
        if (!h->can_irq)
                cf_stm32_can_poll(h);
        uint8_t tail = h->rx_tail;
        if (tail == h->rx_head)
                return false;
        *f = h->rx[tail];
        h->rx_tail = (uint8_t) ((tail + 1u) % CF_CAN_RX_RING);
        return true;
}

int cf_hal_can_send(struct cf_hal *h, uint32_t id, const uint8_t *data, uint8_t dlc)
{
        if (!h->can_up || (CAN_ESR & CAN_ESR_BOFF))
                return -ENETDOWN;
        if (id > 0x7FFu || dlc > 8)
                return -EINVAL;
        uint32_t tsr = CAN_TSR;
        unsigned mb;
        for (mb = 0; mb < 3; mb++)
                if (tsr & (CAN_TSR_TME0 << mb))
                        break;
        if (mb == 3)
                return -EAGAIN;
        uint8_t buf[8] = {0};
        memcpy(buf, data, dlc);
        uint32_t lo, hi;
        memcpy(&lo, buf, 4);
        memcpy(&hi, buf + 4, 4);
        CAN_TDTR(mb) = dlc;
        CAN_TDLR(mb) = lo;
        CAN_TDHR(mb) = hi;
        CAN_TIR(mb) = id << 21 | CAN_TIR_TXRQ;
        return 0;
}
