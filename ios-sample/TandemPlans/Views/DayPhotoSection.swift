// The day editor's photo: pick one from the library, see its upload progress, and see it on the
// other devices of the account after they sync.

import PhotosUI
import SwiftUI
import Tandem
import UIKit

/// A section of the day editor's list showing the day's photo, with a PhotosPicker to attach or
/// replace it.
struct DayPhotoSection: View {
    @State private var model: DayPhotoModel
    @State private var picked: PhotosPickerItem?
    let canEdit: Bool

    init(tandem: Tandem, dayId: String, collection: String = PlanDay.collection, canEdit: Bool = true) {
        _model = State(initialValue: DayPhotoModel(tandem: tandem, dayId: dayId, collection: collection))
        self.canEdit = canEdit
    }

    var body: some View {
        Section("Photo") {
            photo
            if let caption = model.caption {
                Text(caption)
                    .font(.caption)
                    .foregroundStyle(isFailed ? AnyShapeStyle(.red) : AnyShapeStyle(.secondary))
            }
            if case let .uploading(sent, total) = model.state, total > 0 {
                ProgressView(value: Double(sent), total: Double(total))
            }
            if case let .downloading(received, total) = model.state, total > 0 {
                ProgressView(value: Double(received), total: Double(total))
            }
            if canEdit {
                PhotosPicker(selection: $picked, matching: .images) {
                    Label(model.reference == nil ? "Add Photo" : "Replace Photo", systemImage: "photo")
                }
                if model.reference != nil {
                    Button("Remove Photo", role: .destructive) {
                        model.remove()
                    }
                }
            }
        }
        .onChange(of: picked) { _, item in
            guard let item else {
                return
            }
            Task {
                if let data = try? await item.loadTransferable(type: Data.self) {
                    let type = item.supportedContentTypes.first?.preferredMIMEType ?? "image/jpeg"
                    await model.attach(data, contentType: type)
                }
                picked = nil
            }
        }
        .errorAlert($model.errorMessage)
        .task {
            await model.run()
        }
    }

    private var isFailed: Bool {
        if case .failed = model.state {
            return true
        }
        return false
    }

    @ViewBuilder
    private var photo: some View {
        if let url = model.fileURL, let image = UIImage(contentsOfFile: url.path) {
            Image(uiImage: image)
                .resizable()
                .scaledToFit()
                .frame(maxHeight: 240)
                .clipShape(RoundedRectangle(cornerRadius: 8))
        } else if model.reference != nil {
            ProgressView()
                .frame(maxWidth: .infinity, minHeight: 120)
        } else {
            Text("No photo")
                .foregroundStyle(.secondary)
        }
    }
}
